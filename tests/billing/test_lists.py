"""The staff lists of invoices and payments: sortable columns, filters in the URL, streamed CSV."""
from __future__ import annotations

import csv
import io
import re
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from app.billing import lists
from app.billing.models import Invoice, PaymentTransaction


def _csv(response) -> list[dict]:
    assert response.status_code == 200 and response.mimetype == "text/csv"
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def _ids(body: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr data-id="(\d+)"', body)]


@pytest.fixture
def billing_rows(session, make_user):
    """Three customers' invoices and charges on 1, 2, 3 Nov 2025 (totals 20, 1,250.50, 5) and one test account's."""
    rows = {}
    for day, (email, total, status, test) in enumerate([("ann@example.com", "20.00", "paid", False),
                                                        ("bob@example.com", "1250.50", "open", False),
                                                        ("cid@example.com", "5.00", "paid", False),
                                                        ("tess@example.com", "99.00", "paid", True)], start=1):
        user = make_user(email, staff=False, test=test)
        when = datetime(2025, 11, day, 9, 30, tzinfo=UTC)
        inv = Invoice(user_id=user.id, kind="period", status=status, subtotal=Decimal(total), total=Decimal(total),
                      amount_paid=Decimal(total) if status == "paid" else Decimal("0.00"), is_test=test,
                      created_at=when)
        session.add(inv)
        session.flush()
        pay = PaymentTransaction(user_id=user.id, invoice_id=inv.id, amount=Decimal(total), is_test=test,
                                 status="succeeded" if status == "paid" else "failed", created_at=when,
                                 idempotency_key=uuid.uuid4().hex, stripe_payment_intent_id=f"pi_{email[:3]}")
        session.add(pay)
        session.flush()
        rows[email[:3]] = (inv, pay)
    session.commit()
    return rows


def test_invoices_sort_by_column_filter_and_export(login_as, billing_rows):
    client = login_as("support")
    ann, bob, cid = (billing_rows[k][0].id for k in ("ann", "bob", "cid"))
    assert _ids(client.get("/admin/billing/invoices").get_data(as_text=True)) == [cid, bob, ann]  # newest first
    body = client.get("/admin/billing/invoices?sort=total").get_data(as_text=True)
    assert _ids(body) == [cid, ann, bob] and 'aria-sort="ascending"' in body and "$1,250.50" in body
    assert _ids(client.get("/admin/billing/invoices?sort=-total").get_data(as_text=True)) == [bob, ann, cid]
    paid = client.get("/admin/billing/invoices?sort=-total&status=paid").get_data(as_text=True)
    assert _ids(paid) == [ann, cid] and 'name="sort" value="-total"' in paid  # the filters keep the order
    assert "sort=total" in paid  # the Total header flips the direction and keeps status=paid
    assert re.search(r'href="[^"]*status=paid[^"]*sort=total|href="[^"]*sort=total[^"]*status=paid', paid)
    for bad in ("nonsense", "-", "user_id", "-discount"):
        response = client.get(f"/admin/billing/invoices?sort={bad}")
        assert response.status_code == 200 and _ids(response.get_data(as_text=True)) == [cid, bob, ann]
    rows = _csv(client.get("/admin/billing/invoices/export.csv?status=paid&sort=-total"))
    assert list(rows[0]) == lists.INVOICE_HEADER
    assert [(r["customer"], r["total"]) for r in rows] == [("ann@example.com", "20.00"), ("cid@example.com", "5.00")]
    assert rows[0]["created_at"] == "2025-11-01T09:30:00+00:00" and rows[0]["world"] == "live"
    everything = _csv(client.get("/admin/billing/invoices/export.csv?include_test=1&sort=garbage"))
    assert [r["customer"][:3] for r in everything] == ["tes", "cid", "bob", "ann"]
    found = client.get(f"/admin/billing/invoices?q=INV-{bob:06d}").get_data(as_text=True)
    assert _ids(found) == [bob]


def test_payments_sort_by_column_filter_and_export(login_as, billing_rows):
    client = login_as("support")
    ann, bob, cid = (billing_rows[k][1].id for k in ("ann", "bob", "cid"))
    assert _ids(client.get("/admin/billing/payments?sort=amount").get_data(as_text=True)) == [cid, ann, bob]
    assert _ids(client.get("/admin/billing/payments?sort=-amount").get_data(as_text=True)) == [bob, ann, cid]
    assert _ids(client.get("/admin/billing/payments?sort=status").get_data(as_text=True))[0] == bob  # failed
    assert _ids(client.get("/admin/billing/payments?sort=%00;drop").get_data(as_text=True)) == [cid, bob, ann]
    assert client.get("/admin/billing/payments?limit=abc&status=bogus").status_code == 200
    rows = _csv(client.get("/admin/billing/payments/export.csv?status=succeeded&sort=amount"))
    assert list(rows[0]) == lists.PAYMENT_HEADER
    assert [(r["customer"], r["amount"], r["stripe_payment_intent"]) for r in rows] == [
        ("cid@example.com", "5.00", "pi_cid"), ("ann@example.com", "20.00", "pi_ann")]
    assert all(r["created_at"].endswith("+00:00") for r in rows)
    by_intent = _csv(client.get("/admin/billing/payments/export.csv?q=pi_bob"))
    assert [r["id"] for r in by_intent] == [str(bob)]


def test_lists_are_permission_checked(login_as, billing_rows):
    client = login_as()  # staff without a role: no subscriptions.view
    for path in ("/admin/billing/invoices", "/admin/billing/payments/export.csv"):
        assert client.get(path).status_code == 403


def test_a_live_filter_swaps_the_headers_too_so_sorting_keeps_the_filter(login_as, billing_rows):
    client = login_as("support")
    fragment = client.get("/admin/billing/invoices?status=paid&sort=total", headers={"HX-Request": "true"})
    body = fragment.get_data(as_text=True)
    assert "<html" not in body and "<thead>" in body and 'id="invoices-csv"' in body
    assert re.search(r'<a href="[^"]*status=paid[^"]*"\s+class="sort-link">Total', body)
    more = client.get(f"/admin/billing/invoices?limit=1&cursor={_cursor(client)}", headers={"HX-Request": "true"})
    assert "<thead>" not in more.get_data(as_text=True) and len(_ids(more.get_data(as_text=True))) == 1


def _cursor(client) -> str:
    body = client.get("/admin/billing/invoices?limit=1").get_data(as_text=True)
    return re.search(r"cursor=([\w-]+)", body).group(1)
