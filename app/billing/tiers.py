"""Tiers: the plans of seed 001, their entitlements, and the staff edits to them."""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from app.billing.models import Subscription, SubscriptionTier
from app.core import audit
from app.core.audit import require_reason
from app.core.errors import DomainError
from app.core.money import money
from app.credits import margins

# Statuses under which the paid tier's entitlements hold (grace keeps credits usable too).
ENTITLED_STATUSES = ("active", "trial", "past_due", "grace_period")
FREE = "free"

# Entitlement keys and the kind of value each takes; unknown keys are refused on edit.
FEATURE_TYPES: dict[str, type] = {
    "device_activations": int,   # -1 = unlimited
    "model_access": str,         # basic | all | all_priority
    "support_level": str,        # community | priority | dedicated | account_manager
    "all_models": bool,
    "priority_models": bool,
    "advanced_analytics": bool,
    "custom_integrations": bool,
    "sla_guarantee": bool,
    "account_manager": bool,
    "custom_pricing": bool,
    "byok": bool,
    "api_access": bool,
}


def _features(devices, access, support, *, analytics=False, integrations=False, sla=False, manager=False,
              pricing=False, byok=False) -> dict:
    return {"device_activations": devices, "model_access": access, "support_level": support,
            "all_models": access != "basic", "priority_models": access == "all_priority",
            "advanced_analytics": analytics, "custom_integrations": integrations, "sla_guarantee": sla,
            "account_manager": manager, "custom_pricing": pricing, "byok": byok, "api_access": True}


# Seed 001's tiers. pro_max and perpetual have no figures in the seed: pro_max sits between
# Pro and Enterprise Pro; perpetual is the BYOK tier (license sold once, no credits).
DEFAULT_TIERS = [
    {"name": "free", "display_name": "Free", "monthly_price": "0.00", "monthly_credits": 100, "max_rollover": 0,
     "rank": 0, "features": _features(1, "basic", "community")},
    {"name": "pro", "display_name": "Pro", "monthly_price": "99.99", "monthly_credits": 10000, "max_rollover": 2000,
     "rank": 10, "features": _features(3, "all", "priority", analytics=True)},
    {"name": "pro_max", "display_name": "Pro Max", "monthly_price": "199.99", "monthly_credits": 25000,
     "max_rollover": 5000, "rank": 20, "features": _features(5, "all", "priority", analytics=True)},
    {"name": "enterprise_pro", "display_name": "Enterprise Pro", "monthly_price": "299.99", "monthly_credits": 50000,
     "max_rollover": 10000, "rank": 30,
     "features": _features(-1, "all_priority", "dedicated", analytics=True, integrations=True)},
    {"name": "enterprise_max", "display_name": "Enterprise Max", "monthly_price": "499.99", "monthly_credits": 100000,
     "max_rollover": 20000, "rank": 40,
     "features": _features(-1, "all_priority", "account_manager", analytics=True, integrations=True, sla=True,
                           manager=True, pricing=True)},
    {"name": "perpetual", "display_name": "Perpetual (BYOK)", "monthly_price": "0.00", "monthly_credits": 0,
     "max_rollover": 0, "rank": 5, "features": _features(3, "all", "community", byok=True)},
]


def ensure_default_tiers(session) -> dict[str, SubscriptionTier]:
    """Create the seed tiers that are missing; staff edits to existing ones are kept."""
    tiers = {t.name: t for t in session.scalars(select(SubscriptionTier))}
    for spec in DEFAULT_TIERS:
        if spec["name"] not in tiers:
            tier = SubscriptionTier(**{**spec, "monthly_price": Decimal(spec["monthly_price"])})
            session.add(tier)
            tiers[tier.name] = tier
    session.flush()
    return tiers


def all_tiers(session) -> list[SubscriptionTier]:
    return list(session.scalars(select(SubscriptionTier).order_by(SubscriptionTier.rank, SubscriptionTier.name)))


def get_tier(session, name: str | None, field: str = "tier") -> SubscriptionTier:
    name = (name or "").strip().lower()
    if not name:
        raise DomainError("tier_required", "Choose a tier.", field)
    tier = session.scalar(select(SubscriptionTier).where(SubscriptionTier.name == name))
    if tier is None:
        raise DomainError("unknown_tier", f"There is no tier called {name!r}.", field)
    return tier


def current_subscription(session, user_id: int) -> Subscription | None:
    """The user's live subscription, else the most recent one."""
    subs = list(session.scalars(select(Subscription).where(Subscription.user_id == user_id)
                                .order_by(Subscription.created_at.desc(), Subscription.id.desc())))
    live = [s for s in subs if s.status != "cancelled"]
    return (live or subs or [None])[0]


def effective_tier(session, user) -> SubscriptionTier:
    """The tier whose entitlements apply now: a lapsed or paused subscription falls back to free."""
    sub = current_subscription(session, user.id)
    if sub is not None and sub.status in ENTITLED_STATUSES:
        return sub.tier
    return get_tier(session, FREE)


def feature_allowed(value) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    return bool(value)


def can_access_feature(session, user, feature: str) -> bool:
    """Seed 004's feature check; an unknown feature is simply not allowed."""
    features = effective_tier(session, user).features or {}
    return feature in features and feature_allowed(features[feature])


def parse_features(raw: dict) -> dict:
    if not isinstance(raw, dict):
        raise DomainError("invalid_features", "Features must be a JSON object.", "features")
    clean = {}
    for key, value in raw.items():
        kind = FEATURE_TYPES.get(key)
        if kind is None:
            raise DomainError("unknown_feature", f"Unknown feature {key!r}; known: {', '.join(FEATURE_TYPES)}.",
                              "features")
        if kind is int and (isinstance(value, bool) or not isinstance(value, int) or value < -1):
            raise DomainError("invalid_features", f"{key} must be a whole number (-1 for unlimited).", "features")
        if kind is not int and not isinstance(value, kind):
            raise DomainError("invalid_features", f"{key} must be a {kind.__name__}.", "features")
        clean[key] = value
    return clean


def _whole(value, field: str) -> int:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise DomainError("invalid_number", "Enter a whole number.", field) from None
    if number < 0:
        raise DomainError("invalid_number", "Enter zero or more.", field)
    return number


def update_tier(session, actor, tier: SubscriptionTier, *, display_name: str, monthly_price, annual_price,
                monthly_credits, max_rollover, features: dict, is_active: bool, reason: str) -> SubscriptionTier:
    """Validate every field first so that a refusal changes nothing; audit the change."""
    reason = require_reason(reason)
    if not (display_name or "").strip():
        raise DomainError("required", "Give the tier a name.", "display_name")
    price = money(monthly_price, "monthly_price")
    annual = money(annual_price, "annual_price") if str(annual_price or "").strip() else None
    for value, field in ((price, "monthly_price"), (annual, "annual_price")):
        if value is not None and value < 0:
            raise DomainError("invalid_amount", "Prices cannot be negative.", field)
    credits, rollover = _whole(monthly_credits, "monthly_credits"), _whole(max_rollover, "max_rollover")
    clean = parse_features(features)
    if is_active and not tier.is_active:  # made sellable: its customers must be priceable

        margins.require_margin(session, tier.name, display_name.strip(), "is_active")
    before = tier.snapshot()
    tier.display_name, tier.monthly_price, tier.annual_price = display_name.strip(), price, annual
    tier.monthly_credits, tier.max_rollover, tier.features, tier.is_active = credits, rollover, clean, bool(is_active)
    audit.record(session, "billing.tier_updated", actor=actor, target=tier, target_type="subscription_tier",
                 before=before, after=tier.snapshot(), reason=reason, is_test=False)
    return tier
