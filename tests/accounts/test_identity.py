"""Customer sign-up, sign-in, verification, reset and sign-out; staff and customer sessions apart."""
from __future__ import annotations

import re

from sqlalchemy import select

from app.billing.subscriptions import live_subscription
from app.credits.balances import get_balance
from app.notifications.models import OutboxMessage
from app.users.models import User
from tests.accounts.conftest import PASSWORD


def _link(session, user, kind) -> str:
    message = session.scalar(select(OutboxMessage).where(OutboxMessage.user_id == user.id, OutboxMessage.kind == kind)
                             .order_by(OutboxMessage.id.desc()))
    return re.search(r"https?://\S+", message.body).group(0).split("admin.test", 1)[1]


def test_sign_up_makes_a_production_customer_on_the_free_tier_and_mails_a_verification_link(app, session, tiers):
    client = app.test_client()
    response = client.post("/account/signup", data={"name": "Nia New", "email": "Nia@Example.com",
                                                     "password": PASSWORD})
    assert response.status_code == 302 and response.headers["Location"] == "/account/"
    user = session.scalar(select(User).where(User.email == "nia@example.com"))
    assert not user.is_test and not user.is_staff and not user.email_verified
    assert user.password_hash.startswith("$argon2id$")
    assert live_subscription(session, user.id).tier.name == "free" and get_balance(session, user.id).total == 100
    page = client.get("/account/").get_data(as_text=True)
    assert "nia@example.com" in page and "100</strong> credits" in page
    assert client.get(_link(session, user, "account_verify")).status_code == 302
    session.refresh(user)
    assert user.email_verified


def test_sign_up_refuses_bad_input_and_a_taken_email_and_changes_nothing(app, session, customer):
    client = app.test_client()
    before = session.scalar(select(User.id).order_by(User.id.desc()))
    weak = client.post("/account/signup", data={"email": "weak@example.com", "password": "short"})
    assert weak.status_code == 422 and "at least 12 characters" in weak.get_data(as_text=True)
    taken = client.post("/account/signup", data={"email": customer.email.upper(), "password": PASSWORD})
    assert taken.status_code == 409 and "exists already" in taken.get_data(as_text=True)
    assert session.scalar(select(User.id).order_by(User.id.desc())) == before


def test_sign_in_failures_say_the_same_and_staff_cannot_use_the_customer_door(app, make_user, customer):
    client = app.test_client()
    wrong = client.post("/account/signin", data={"email": customer.email, "password": "Wrong-Pass-2026"})
    unknown = client.post("/account/signin", data={"email": "nobody@example.com", "password": PASSWORD})
    staff = make_user(roles=("support",), password=PASSWORD)
    as_staff = client.post("/account/signin", data={"email": staff.email, "password": PASSWORD})
    for response in (wrong, unknown, as_staff):
        assert response.status_code == 401 and "Wrong email or password." in response.get_data(as_text=True)


def test_customer_and_staff_sessions_never_open_each_others_pages(app, customer_client, login_as, customer):
    # The customer's cookie does not open the console, and the console refuses the customer's password.
    assert customer_client.get("/admin", follow_redirects=False).status_code == 302
    assert "rephlo_account" in {c.key for c in customer_client._cookies.values()}
    refused = app.test_client().post("/auth/login", data={"email": customer.email, "password": PASSWORD})
    assert refused.status_code == 401 and "Customers sign in at /account/signin" in refused.get_data(as_text=True)
    # A staff session does not open the customer's page.
    staff = login_as("support")
    assert staff.get("/account/").status_code == 302


def test_sign_in_is_throttled_per_account(app, customer):
    app.config["LOGIN_LIMIT_PER_ACCOUNT"], saved = "3 per 15 minutes", app.config["LOGIN_LIMIT_PER_ACCOUNT"]
    try:
        client = app.test_client()
        codes = [client.post("/account/signin", data={"email": customer.email, "password": "Wrong-Pass-2026"})
                 .status_code for _ in range(4)]
    finally:
        app.config["LOGIN_LIMIT_PER_ACCOUNT"] = saved
    assert codes == [401, 401, 401, 429]


def test_reset_link_works_once_and_ends_other_sessions(app, session, customer_client, customer):
    anonymous = app.test_client()
    anonymous.post("/account/forgot", data={"email": customer.email})
    link = _link(session, customer, "account_reset")
    new_password = "Brand-New-Pass-2027"
    assert anonymous.post(link, data={"password": new_password}).status_code == 302
    assert anonymous.post(link, data={"password": "Another-Pass-2028"}).status_code == 400  # used
    assert customer_client.get("/account/").status_code == 302  # the old session ended
    ok = app.test_client().post("/account/signin", data={"email": customer.email, "password": new_password})
    assert ok.status_code == 302


def test_forgot_password_does_not_tell_whether_an_account_exists(app, session, customer):
    client = app.test_client()
    known = client.post("/account/forgot", data={"email": customer.email}).get_data(as_text=True)
    unknown = client.post("/account/forgot", data={"email": "ghost@example.com"}).get_data(as_text=True)
    assert "If an account uses this address" in known and known == unknown


def test_sign_out_everywhere_ends_sessions(app, session, customer_client, customer):
    other = app.test_client()
    other.post("/account/signin", data={"email": customer.email, "password": PASSWORD})
    assert customer_client.post("/account/signout-everywhere").status_code == 302
    assert other.get("/account/").status_code == 302


def test_an_expired_test_account_cannot_sign_in(app, session, customer):
    from datetime import timedelta

    from app.core import clock

    customer.account_type, customer.test_expires_at = "test", clock.now() - timedelta(minutes=1)
    session.commit()
    response = app.test_client().post("/account/signin", data={"email": customer.email, "password": PASSWORD})
    assert response.status_code == 401


def test_a_test_accounts_one_time_password_opens_the_customer_pages(app, session, make_user, tiers):
    from app.sandbox.service import create_test_user

    created = create_test_user(session, make_user(roles=("admin",)), tier="pro")
    session.commit()
    browser = app.test_client()
    signed_in = browser.post("/account/signin", data={"email": created.user.email, "password": created.password})
    assert signed_in.status_code == 302
    page = browser.get("/account/").get_data(as_text=True)
    assert "test account" in page and "Pro" in page
