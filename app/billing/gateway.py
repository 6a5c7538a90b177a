"""The Stripe payment rail, wrapping the official SDK.

Stripe only moves money here: customers, payment methods, PaymentIntents and refunds;
amounts are computed by the app. The base URL is configurable (STRIPE_API_BASE) so that
development and tests talk to localstripe, started as a subprocess (it is GPL: never
imported). Every Stripe failure becomes a GatewayError, a DomainError with a clear
message, so no caller ever shows a 500 for a declined card or an unreachable emulator.
Test accounts and sandbox traffic only ever use a test key.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

import stripe
from flask import current_app

from app.core.errors import DomainError

log = logging.getLogger(__name__)

# Declines after which retrying the same card is pointless (and, for fraud, harmful).
HARD_DECLINES = frozenset({"lost_card", "stolen_card", "fraudulent"})
# The test cards of the brief, as Stripe's canonical test payment methods (which both
# Stripe test mode and localstripe accept, so no raw card number ever leaves the app).
TEST_CARDS = {"4242424242424242": "pm_card_visa", "4000000000000341": "pm_card_chargeCustomerFail"}


class GatewayError(DomainError):
    """Stripe refused or could not be reached; `code` says which."""


@dataclass(frozen=True)
class Outcome:
    """What a PaymentIntent came to, in the app's payment statuses."""

    payment_intent_id: str
    status: str  # pending | processing | succeeded | failed | canceled
    charge_id: str | None = None
    failure_code: str | None = None
    decline_code: str | None = None
    failure_message: str | None = None

    @property
    def hard_decline(self) -> bool:
        return self.decline_code in HARD_DECLINES or self.failure_code in HARD_DECLINES


def cents(amount: Decimal) -> int:
    return int((Decimal(amount) * 100).to_integral_value())


def _key(is_test: bool) -> str:
    cfg = current_app.config
    if is_test:
        key = cfg.get("STRIPE_TEST_API_KEY") or cfg.get("STRIPE_API_KEY") or ""
        if not key.startswith(("sk_test_", "rk_test_")):
            raise GatewayError("live_key_refused", "Test accounts and sandbox traffic only use a Stripe test key; "
                               "set STRIPE_TEST_API_KEY to a sk_test_ key.", status=503)
        return key
    key = cfg.get("STRIPE_API_KEY") or ""
    if not key:
        raise GatewayError("payment_gateway_not_configured", "No Stripe API key is configured.", status=503)
    return key


@lru_cache(maxsize=8)
def _client(key: str, base: str, timeout: float, retries: int) -> stripe.StripeClient:
    addresses = {"api": base} if base else None
    return stripe.StripeClient(key, base_addresses=addresses, max_network_retries=retries,
                               http_client=stripe.RequestsClient(timeout=timeout))


def client(is_test: bool) -> stripe.StripeClient:
    cfg = current_app.config
    return _client(_key(is_test), (cfg.get("STRIPE_API_BASE") or "").rstrip("/"),
                   float(cfg.get("STRIPE_TIMEOUT", 15)), int(cfg.get("STRIPE_MAX_RETRIES", 1)))


def uses_emulator() -> bool:
    return bool(current_app.config.get("STRIPE_API_BASE"))


def _translate(error: stripe.StripeError) -> GatewayError:
    if isinstance(error, stripe.APIConnectionError):
        return GatewayError("payment_gateway_unavailable",
                            "The payment provider cannot be reached right now; nothing was charged. Try again shortly.",
                            status=503)
    if isinstance(error, stripe.CardError):
        return GatewayError(error.code or "card_declined", error.user_message or "The card was declined.",
                            "payment_method", status=402)
    if isinstance(error, stripe.AuthenticationError):
        return GatewayError("payment_gateway_auth", "The payment provider refused our API key.", status=503)
    if isinstance(error, stripe.RateLimitError):
        return GatewayError("payment_gateway_busy", "The payment provider is busy; try again shortly.", status=503)
    if isinstance(error, stripe.InvalidRequestError):
        return GatewayError(error.code or "payment_gateway_rejected",
                            f"The payment provider refused the request: {error.user_message or 'invalid request'}.",
                            error.param, status=400 if error.http_status == 404 else 422)
    return GatewayError("payment_gateway_error", "The payment provider answered with an error; try again shortly.",
                        status=502)


def _call(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except stripe.StripeError as error:
        log.warning("stripe call failed: %s %s", type(error).__name__, getattr(error, "code", None))
        raise _translate(error) from None


def create_customer(*, email: str, user_id: int, is_test: bool, idempotency_key: str) -> str:
    c = client(is_test)
    customer = _call(c.v1.customers.create, params={"email": email, "metadata": {"user_id": str(user_id)}},
                     options={"idempotency_key": idempotency_key})
    return customer.id


def attach_payment_method(*, customer_id: str, payment_method: str, is_test: bool) -> tuple[str, str | None]:
    """Attach a payment method (a pm_ id from Stripe.js, or a canonical test one) and make
    it the customer's default; returns (payment method id, last4)."""
    c = client(is_test)
    pm = _call(c.v1.payment_methods.attach, TEST_CARDS.get(payment_method, payment_method),
               params={"customer": customer_id})
    _call(c.v1.customers.update, customer_id,
          params={"invoice_settings": {"default_payment_method": pm.id}})
    card = getattr(pm, "card", None)
    return pm.id, getattr(card, "last4", None) if card else None


def create_payment_intent(*, amount: Decimal, currency: str, customer_id: str, payment_method: str,
                          metadata: dict, idempotency_key: str, is_test: bool) -> str:
    """Create (not confirm) a PaymentIntent, so that its id is stored before money moves."""
    c = client(is_test)
    pi = _call(c.v1.payment_intents.create,
               params={"amount": cents(amount), "currency": currency, "customer": customer_id,
                       "payment_method": payment_method, "metadata": {k: str(v) for k, v in metadata.items()}},
               options={"idempotency_key": idempotency_key})
    return pi.id


def outcome_of(pi) -> Outcome:
    """An Outcome from a PaymentIntent, as the SDK returns it or as a webhook carries it
    (the SDK's objects are converted to plain dicts first)."""
    if hasattr(pi, "to_dict"):
        pi = pi.to_dict()
    charge = pi.get("latest_charge")
    charge_id = charge if isinstance(charge, str) or charge is None else charge.get("id")
    error = pi.get("last_payment_error") or None
    raw = pi.get("status")
    status = {"succeeded": "succeeded", "processing": "processing", "canceled": "canceled",
              "requires_confirmation": "pending", "requires_capture": "processing"}.get(raw)
    if status is None:  # requires_payment_method after a failure, or requires_action off-session
        status = "pending" if error is None and raw == "requires_payment_method" else "failed"
    if status != "failed":
        return Outcome(pi["id"], status, charge_id)
    if error is None:
        return Outcome(pi["id"], "failed", charge_id, "authentication_required", None,
                       "The payment needs the customer's action.")
    return Outcome(pi["id"], "failed", charge_id, error.get("code") or "card_declined", error.get("decline_code"),
                   error.get("message") or "The card was declined.")


def confirm_payment_intent(*, payment_intent_id: str, idempotency_key: str, is_test: bool) -> Outcome:
    """Confirm off-session; a decline is an Outcome, only transport/API failures raise."""
    c = client(is_test)
    # localstripe rejects off_session on confirm; real Stripe needs it for saved cards.
    params = {} if uses_emulator() else {"off_session": True}
    try:
        pi = c.v1.payment_intents.confirm(payment_intent_id, params=params,
                                          options={"idempotency_key": idempotency_key})
    except stripe.CardError as error:
        pi = _call(c.v1.payment_intents.retrieve, payment_intent_id)
        outcome = outcome_of(pi)
        if outcome.status == "failed":
            decline = getattr(error.error, "decline_code", None) if error.error else None
            return Outcome(outcome.payment_intent_id, "failed", outcome.charge_id, error.code or outcome.failure_code,
                           decline or outcome.decline_code, error.user_message or outcome.failure_message)
        return outcome
    except stripe.StripeError as error:
        raise _translate(error) from None
    return outcome_of(pi)


def retrieve_payment_intent(*, payment_intent_id: str, is_test: bool) -> Outcome:
    return outcome_of(_call(client(is_test).v1.payment_intents.retrieve, payment_intent_id))


def create_refund(*, payment_intent_id: str, amount: Decimal, idempotency_key: str, metadata: dict,
                  is_test: bool) -> tuple[str, str]:
    refund = _call(client(is_test).v1.refunds.create,
                   params={"payment_intent": payment_intent_id, "amount": cents(amount),
                           "metadata": {k: str(v) for k, v in metadata.items()}},
                   options={"idempotency_key": idempotency_key})
    return refund.id, refund.status


def construct_event(payload: bytes, signature: str | None) -> stripe.Event:
    secret = current_app.config.get("STRIPE_WEBHOOK_SECRET") or ""
    if not secret:
        raise DomainError("webhook_not_configured", "STRIPE_WEBHOOK_SECRET is not set.", status=400)
    if not signature:
        raise DomainError("missing_signature", "The Stripe-Signature header is missing.", status=400)
    try:
        return stripe.Webhook.construct_event(payload, signature, secret)
    except stripe.SignatureVerificationError:
        raise DomainError("invalid_signature", "The webhook signature does not verify.", status=400) from None
    except ValueError:
        raise DomainError("invalid_payload", "The webhook body is not a Stripe event.", status=400) from None


def reachable(is_test: bool = True) -> bool:
    """Whether the configured gateway answers (used by the seeder, which works without it)."""
    try:
        client(is_test).v1.balance.retrieve()
        return True
    except (stripe.StripeError, DomainError):
        return False
