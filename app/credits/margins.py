"""Margin configurations per tier: versioned like prices, every change in the margin audit log.

Strategies (DESIGN.md §4): fixed_percentage; tiered by the user's tokens so far this calendar
month (brackets by min_tokens, the bracket applies from exactly its threshold); dynamic, a base
plus per-vendor adjustments. The perpetual (BYOK) tier is always 0%.
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import select

from app.core import audit, clock
from app.core.errors import DomainError
from app.core.money import to_decimal
from app.credits import pricing
from app.credits.models import STRATEGIES, TIERS, MarginAudit, MarginConfig, Provider

TWO = Decimal("0.01")
MAX_MARGIN = Decimal("999.99")
MAX_BRACKET_TOKENS = 10**15


def parse_percent(raw, field_name: str, low: Decimal = Decimal(0), high: Decimal = MAX_MARGIN) -> Decimal:
    value = to_decimal(raw, field_name)
    if value != value.quantize(TWO):
        raise DomainError("invalid_percentage", "Percentages have at most 2 decimals.", field_name)
    if not low <= value <= high:
        raise DomainError("invalid_percentage", f"Enter a percentage from {low} to {high}.", field_name)
    return value.quantize(TWO)


def parse_tokens(raw: str, field_name: str) -> int:
    """Accept 10000000, 10,000,000 or 10M."""
    text = str(raw).strip().upper().replace(",", "").replace("_", "")
    factor = 1
    if text.endswith("M"):
        text, factor = text[:-1], 1_000_000
    elif text.endswith("K"):
        text, factor = text[:-1], 1_000
    try:
        value = int(Decimal(text) * factor)
        if Decimal(text) * factor != value:
            raise ValueError
    except (ArithmeticError, ValueError):
        raise DomainError("invalid_tokens", f"{raw!r} is not a token count.", field_name) from None
    if not 0 <= value <= MAX_BRACKET_TOKENS:
        raise DomainError("invalid_tokens", "Token thresholds are whole numbers from 0.", field_name)
    return value


def parse_pairs(text: str, field_name: str) -> list[tuple[str, str]]:
    """`key: value` per line (or separated by ;), as typed into the margin form."""
    pairs = []
    for part in (text or "").replace(";", "\n").splitlines():
        part = part.strip()
        if not part:
            continue
        if ":" not in part and "=" not in part:
            raise DomainError("invalid_format", f"Write each line as key: value (got {part!r}).", field_name)
        key, value = part.replace("=", ":", 1).split(":", 1)
        pairs.append((key.strip(), value.strip()))
    return pairs


def _brackets(pairs, field_name: str = "brackets") -> list[dict]:
    rows = sorted(((parse_tokens(k, field_name), parse_percent(v, field_name)) for k, v in pairs), key=lambda r: r[0])
    if not rows or rows[0][0] != 0:
        raise DomainError("invalid_brackets", "Tiered margins need a bracket starting at 0 tokens.", field_name)
    if len({r[0] for r in rows}) != len(rows):
        raise DomainError("invalid_brackets", "Two brackets start at the same token count.", field_name)
    return [{"min_tokens": t, "margin": str(m)} for t, m in rows]


def _adjustments(session, pairs, base: Decimal, field_name: str = "vendor_adjustments") -> dict:
    vendors = set(session.scalars(select(Provider.vendor_name)))
    result = {}
    for vendor, value in pairs:
        vendor = vendor.lower()
        if vendor not in vendors:
            raise DomainError("unknown_vendor", f"No provider called {vendor!r}.", field_name)
        adj = parse_percent(value, field_name, low=Decimal("-999.99"))
        if not 0 <= base + adj <= MAX_MARGIN:
            raise DomainError("invalid_percentage", f"{vendor}: base plus adjustment must stay from 0 to 999.99.",
                              field_name)
        result[vendor] = str(adj)
    return result


def details(config: MarginConfig | None) -> dict | None:
    if config is None:
        return None
    return {"strategy": config.strategy, "margin_percentage": str(config.margin_percentage),
            "brackets": config.brackets, "vendor_adjustments": config.vendor_adjustments,
            "effective_date": config.effective_date.isoformat()}


def current(session, tier: str, at: datetime | None = None) -> MarginConfig | None:
    at = at or clock.now()
    return session.scalars(select(MarginConfig).where(MarginConfig.tier == tier, MarginConfig.effective_date <= at)
                           .order_by(MarginConfig.effective_date.desc()).limit(1)).first()


def require_margin(session, tier: str, display_name: str | None = None, field: str = "tier",
                   at: datetime | None = None) -> None:
    """Refuse to sell a tier, or move a customer to it, without a margin effective now: every API
    call of its customers would answer 422 margin_not_configured. Perpetual (BYOK) needs none."""
    if tier == "perpetual" or current(session, tier, at) is not None:
        return
    name = display_name or tier
    raise DomainError("margin_not_configured",
                      f"The {name} tier has no margin configuration effective now: add one under Credits, "
                      f"Margins ({tier}) first, or its customers' API calls would all be refused.", field)


def set_margin(session, actor, tier: str, strategy: str, margin, reason: str, brackets=(), adjustments=(),
               effective_date: datetime | None = None, actor_label: str | None = None,
               at: datetime | None = None) -> MarginConfig:
    """Add a margin version for a tier. brackets/adjustments are (key, value) pairs."""
    if tier not in TIERS:
        raise DomainError("invalid_tier", f"Pick one of: {', '.join(TIERS)}.", "tier")
    if strategy not in STRATEGIES:
        raise DomainError("invalid_strategy", f"Pick one of: {', '.join(STRATEGIES)}.", "strategy")
    reason = pricing._reason(reason)
    effective = pricing._effective(effective_date) if at is None else (effective_date or at)
    stored_brackets = stored_adjustments = None
    if strategy == "tiered":
        stored_brackets = _brackets(brackets)
        base = Decimal(stored_brackets[0]["margin"])
    else:
        base = parse_percent(margin, "margin_percentage")
    if strategy == "dynamic":
        stored_adjustments = _adjustments(session, adjustments, base)
    if tier == "perpetual" and (strategy != "fixed_percentage" or base != 0):
        raise DomainError("perpetual_margin", "The perpetual (BYOK) tier is always a fixed 0% margin.",
                          "margin_percentage")
    if session.scalar(select(MarginConfig.id).where(MarginConfig.tier == tier,
                                                    MarginConfig.effective_date == effective)):
        raise DomainError("duplicate_effective_date", "A margin for this tier starts at that time already.",
                          "effective_date")
    previous = current(session, tier, effective)
    config = MarginConfig(tier=tier, strategy=strategy, margin_percentage=base, brackets=stored_brackets,
                          vendor_adjustments=stored_adjustments, effective_date=effective, reason=reason,
                          created_by_id=getattr(actor, "id", None))
    if at is not None:
        config.created_at = at
    session.add(config)
    session.flush()
    if previous is not None:
        session.add(MarginAudit(
            tier=tier, config_id=config.id, previous_config_id=previous.id,
            old_strategy=previous.strategy, new_strategy=strategy, old_margin=previous.margin_percentage,
            new_margin=base, old_details=details(previous), new_details=details(config), reason=reason,
            changed_by_id=getattr(actor, "id", None),
            changed_by_label=actor_label or getattr(actor, "email", None) or "system",
            created_at=at or clock.now()))
    audit.record(session, "credits.margin_changed", actor=actor, target=config, before=details(previous),
                 after=details(config), reason=reason)
    pricing.bump(session)
    return config


def overview(session, at: datetime | None = None) -> list[dict]:
    """Per tier: the margin in force and the next scheduled one."""
    at = at or clock.now()
    rows = session.scalars(select(MarginConfig).order_by(MarginConfig.tier, MarginConfig.effective_date)).all()
    by_tier: dict[str, dict] = {t: {"tier": t, "current": None, "next": None} for t in TIERS}
    for row in rows:
        entry = by_tier.setdefault(row.tier, {"tier": row.tier, "current": None, "next": None})
        if row.effective_date <= at:
            entry["current"] = row
        elif entry["next"] is None:
            entry["next"] = row
    return list(by_tier.values())


def audit_log(session, tier: str | None = None, limit: int = 50) -> list[MarginAudit]:
    stmt = select(MarginAudit).order_by(MarginAudit.created_at.desc(), MarginAudit.id.desc()).limit(limit)
    if tier:
        stmt = stmt.where(MarginAudit.tier == tier)
    return list(session.scalars(stmt))


def history(session, tier: str) -> list[MarginConfig]:
    return list(session.scalars(select(MarginConfig).where(MarginConfig.tier == tier)
                                .order_by(MarginConfig.effective_date.desc())))
