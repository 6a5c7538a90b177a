"""Issue 15 item 12, defence in depth: htmx handed the page's CSP nonce to any script swapped in
from a fragment (an injected one included); role_change_log could be edited or deleted on
PostgreSQL, unlike the audit log; and a refund above the approval threshold could skip the second
admin when split into small refunds of one payment."""
from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.billing.conftest import make_sub, stripe_emulator, tiers  # noqa: F401  (fixtures)

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def test_htmx_gives_no_nonce_to_swapped_in_scripts_or_styles(login_as):
    page = login_as("analyst").get("/admin").get_data(as_text=True)
    content = re.search(r"""<meta name="htmx-config" content='([^']*)'>""", page).group(1)
    config = json.loads(content)
    assert "inlineScriptNonce" not in config and "inlineStyleNonce" not in config
    nonce = re.search(r'nonce="([^"]+)"', page).group(1)
    assert nonce not in content
    # Nothing needed it: every script is a file of our own (CSP 'self'), none inline.
    inline = [str(p.relative_to(TEMPLATES)) for p in TEMPLATES.rglob("*.html")
              if re.search(r"<script(?![^>]*\bsrc=)[^>]*>", p.read_text())]
    assert inline == []


@pytest.mark.postgres
def test_role_change_log_is_append_only_on_postgresql(session, make_user):
    from app.rbac.models import RoleChangeLog

    target, actor = make_user(), make_user(roles=("admin",))
    live = RoleChangeLog(target_user_id=target.id, changed_by_id=actor.id, changed_by_label=actor.email,
                         action="role_assigned", reason="promotion", is_test=False)
    test_row = RoleChangeLog(changed_by_label="qa", action="role_assigned", reason="qa", is_test=True)
    session.add_all([live, test_row])
    session.commit()
    for sql in ("UPDATE role_change_log SET reason = 'nothing happened' WHERE id = :id",
                "UPDATE role_change_log SET changed_by_id = NULL, changed_by_label = 'someone' WHERE id = :id",
                "UPDATE role_change_log SET target_user_id = :other WHERE id = :id",
                "DELETE FROM role_change_log WHERE id = :id"):
        with pytest.raises(DBAPIError, match="role_change_log is append-only"), session.begin_nested():
            session.execute(text(sql), {"id": live.id, "other": actor.id})
    session.execute(text("DELETE FROM role_change_log WHERE id = :id"), {"id": test_row.id})  # test-data cleanup
    session.execute(text("DELETE FROM users WHERE id = :id"), {"id": target.id})  # ON DELETE SET NULL is let through
    row = session.execute(text("SELECT target_user_id, reason, changed_by_label FROM role_change_log WHERE id = :id"),
                          {"id": live.id}).one()
    assert tuple(row) == (None, "promotion", actor.email)


@pytest.fixture
def stripe(app, stripe_emulator):  # noqa: F811
    keys = ("STRIPE_API_BASE", "STRIPE_API_KEY", "STRIPE_TEST_API_KEY", "STRIPE_MAX_RETRIES")
    saved = {k: app.config.get(k) for k in keys}
    app.config.update(STRIPE_API_BASE=stripe_emulator, STRIPE_API_KEY="sk_test_sec", STRIPE_TEST_API_KEY="",
                      STRIPE_MAX_RETRIES=0)
    yield
    app.config.update(saved)


def test_refunds_of_one_payment_count_together_against_the_approval_threshold(app, stripe, session, make_sub,  # noqa: F811
                                                                                make_user):
    from app.billing import collection, invoices, refunds
    from app.billing.models import PaymentTransaction, RefundRequest

    sub = make_sub("enterprise_pro", card="4242424242424242")
    collection.collect(session, invoices.period_invoice(session, sub), trigger="signup")
    payment = session.query(PaymentTransaction).filter_by(subscription_id=sub.id, kind="charge").one()
    admin = make_user(roles=("admin",))
    assert refunds.threshold() == Decimal("100.00")
    for amount in ("60.00", "40.00"):  # up to the threshold together: no approval needed
        assert isinstance(refunds.request_refund(session, admin, payment, amount, reason="goodwill"),
                          PaymentTransaction)
    assert payment.refunded_amount == Decimal("100.00")
    split = refunds.request_refund(session, admin, payment, "0.01", reason="one cent more")
    assert isinstance(split, RefundRequest) and split.status == "pending"  # 100.01 on this payment: a second admin
    assert payment.refunded_amount == Decimal("100.00")
    # A pending request counts too: the next small one waits behind it rather than slipping past.
    assert isinstance(refunds.request_refund(session, admin, payment, "5.00", reason="more"), RefundRequest)
    audit = session.execute(text("SELECT after FROM audit_log WHERE action = 'billing.refund_requested' "
                                 "ORDER BY id")).scalars().all()
    assert [json.loads(a) if isinstance(a, str) else a for a in audit][0]["refunded_before"] == "100.00"
