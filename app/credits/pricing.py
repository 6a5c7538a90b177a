"""Providers and versioned model prices: lookups for the hot path, and audited staff changes.

Prices and margins are append-only versions, so a process may keep them all in memory. The
deduction's first query reads pricing_state.token alongside the balance row; a different token
means something changed and the snapshot is reloaded, inside that same transaction.
"""
from __future__ import annotations

import bisect
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import lru_cache

from sqlalchemy import select, update

from app.core import audit, clock, pg
from app.core.audit import require_reason
from app.core.errors import DomainError, NotFound
from app.core.money import to_decimal
from app.credits.formula import Quote, credits_for, customer_cost, resolve_margin, vendor_cost
from app.credits.models import MarginConfig, ModelPrice, PricingState, Provider

MAX_PRICE = Decimal("999999.999999")


@dataclass(frozen=True)
class PriceRow:
    id: int
    model: str
    vendor: str
    provider_active: bool
    input_price: Decimal
    output_price: Decimal
    effective_date: datetime


@dataclass(frozen=True)
class MarginRow:
    id: int
    tier: str
    strategy: str
    margin: Decimal
    brackets: list | None
    adjustments: dict | None
    effective_date: datetime


@dataclass
class Snapshot:
    token: str | None
    prices: dict[str, list[PriceRow]] = field(default_factory=dict)
    margins: dict[str, list[MarginRow]] = field(default_factory=dict)

    @staticmethod
    def _at(rows: list, at: datetime):
        index = bisect.bisect_right([r.effective_date for r in rows], at)
        return rows[index - 1] if index else None

    def price_at(self, model: str, at: datetime) -> PriceRow:
        row = self._at(self.prices.get(model, []), at)
        if row is None:
            raise DomainError("price_not_found", f"No price is set for model {model!r}.", "model")
        if not row.provider_active:
            raise DomainError("provider_inactive", f"The provider of {model!r} is switched off.", "model")
        return row

    def margin_at(self, tier: str, at: datetime) -> MarginRow:
        row = self._at(self.margins.get(tier, []), at)
        if row is None:
            raise DomainError("margin_not_configured", f"No margin is configured for the {tier} tier.", "tier")
        return row


_cache: dict[str, Snapshot] = {}
_lock = threading.Lock()


def database_key(session) -> str:
    """Which database the session talks to (its engine's URL): per-process caches are kept per database."""
    bind = pg.bind_of(session)
    return _url_of(getattr(bind, "engine", bind))


@lru_cache(maxsize=16)
def _url_of(engine) -> str:
    return str(engine.url)


def _load(session, token: str | None) -> Snapshot:
    snap = Snapshot(token)
    rows = session.execute(
        select(ModelPrice.id, ModelPrice.model_name, Provider.vendor_name, Provider.is_active,
               ModelPrice.input_price_per_million, ModelPrice.output_price_per_million, ModelPrice.effective_date)
        .join(Provider, Provider.id == ModelPrice.provider_id)
        .order_by(ModelPrice.model_name, ModelPrice.effective_date)
    )
    for r in rows:
        snap.prices.setdefault(r[1], []).append(PriceRow(*r))
    margins = session.scalars(select(MarginConfig).order_by(MarginConfig.tier, MarginConfig.effective_date))
    for m in margins:
        snap.margins.setdefault(m.tier, []).append(MarginRow(
            m.id, m.tier, m.strategy, m.margin_percentage, m.brackets, m.vendor_adjustments, m.effective_date))
    return snap


def snapshot(session, token: str | None = None, known: bool = False) -> Snapshot:
    """The pricing tables as of `token` (read it here unless the caller already has)."""
    if not known:
        token = current_token(session)
    key = database_key(session)
    snap = _cache.get(key)
    if snap is not None and token is not None and snap.token == token:
        return snap
    snap = _load(session, token)
    with _lock:
        _cache[key] = snap
    return snap


def cached(where: str) -> Snapshot | None:
    """This process's snapshot of the database `where` (database_key()), without asking whether
    it is current (the hot path's optimistic try checks the token inside its own UPDATE instead)."""
    return _cache.get(where)


def current_token(session) -> str | None:
    return session.scalar(select(PricingState.token).where(PricingState.id == 1))


def bump(session) -> None:
    """Mark the pricing tables changed (a fresh random token: a rolled-back change never matches)."""
    token = uuid.uuid4().hex
    done = session.execute(update(PricingState).where(PricingState.id == 1)
                           .values(token=token, changed_at=clock.now())).rowcount
    if not done:
        session.add(PricingState(id=1, token=token, changed_at=clock.now()))
    session.flush()


def quote(snap: Snapshot, tier: str, model: str, input_tokens: int, output_tokens: int, month_tokens: int,
          at: datetime) -> Quote:
    """Price one request: the price row and margin effective at `at`, then the formula.
    The perpetual (BYOK) tier has margin 0 and is charged nothing: usage is still recorded."""
    price = snap.price_at(model, at)
    cost = vendor_cost(input_tokens, output_tokens, price.input_price, price.output_price)
    if tier == "perpetual":
        margin, credits = Decimal("0.00"), 0
    else:
        m = snap.margin_at(tier, at)
        margin = resolve_margin(m.strategy, m.margin, m.brackets, m.adjustments, price.vendor, month_tokens)
        credits = credits_for(cost, margin)
    return Quote(model, price.vendor, price.id, input_tokens, output_tokens, cost, margin,
                 customer_cost(cost, margin), credits)


UNBOUNDED = 2**62


def margin_bounds(snap: Snapshot, tier: str, at: datetime, month_tokens: int) -> tuple[int, int]:
    """The month-to-date token range [lo, hi) within which the tier's margin stays the one used
    for month_tokens: the tiered bracket around it, or everything for the other strategies."""
    if tier == "perpetual":
        return 0, UNBOUNDED
    m = snap.margin_at(tier, at)
    if m.strategy != "tiered":
        return 0, UNBOUNDED
    lo, hi = 0, UNBOUNDED
    for start in sorted(int(b["min_tokens"]) for b in m.brackets or []):
        if start <= month_tokens:
            lo = start
        else:
            hi = start
            break
    return lo, hi


# ---- staff changes ---------------------------------------------------------------------------

def parse_price(raw, field_name: str) -> Decimal:
    value = to_decimal(raw, field_name)
    if value < 0 or value > MAX_PRICE:
        raise DomainError("invalid_price", "Enter a price per million tokens from 0 to 999999.999999.", field_name)
    if value != value.quantize(Decimal("0.000001")):
        raise DomainError("invalid_price", "Prices have at most 6 decimals.", field_name)
    return value.quantize(Decimal("0.000001"))


def _reason(reason: str | None) -> str:
    return require_reason(reason, minimum=3)


def _effective(value: datetime | None, field_name: str = "effective_date") -> datetime:
    """Now, or a future time: history is never rewritten by backdating a change."""
    now = clock.now()
    if value is None:
        return now
    if value.tzinfo is None:
        raise DomainError("invalid_date", "Give the effective date in UTC.", field_name)
    if value < now.replace(second=0, microsecond=0):
        raise DomainError("effective_in_past", "The effective date cannot be in the past.", field_name)
    return value


def provider_dict(p: Provider) -> dict:
    return {"display_name": p.display_name, "api_endpoint": p.api_endpoint, "is_active": p.is_active}


def create_provider(session, actor, vendor_name: str, display_name: str, api_endpoint: str, reason: str) -> Provider:
    vendor_name = (vendor_name or "").strip().lower()
    if not vendor_name or not vendor_name.replace("-", "").replace("_", "").isalnum() or len(vendor_name) > 40:
        raise DomainError("invalid_vendor", "Use a short lowercase name such as openai.", "vendor_name")
    if session.scalar(select(Provider).where(Provider.vendor_name == vendor_name)):
        raise DomainError("duplicate_vendor", f"A provider called {vendor_name} exists already.", "vendor_name")
    reason = _reason(reason)
    provider = Provider(vendor_name=vendor_name, display_name=(display_name or vendor_name).strip()[:120],
                        api_endpoint=(api_endpoint or "").strip()[:255], is_active=True)
    session.add(provider)
    session.flush()
    audit.record(session, "credits.provider_created", actor=actor, target=provider, after=provider_dict(provider),
                 reason=reason)
    bump(session)
    return provider


def update_provider(session, actor, provider_id: int, display_name: str, api_endpoint: str, is_active: bool,
                    reason: str) -> Provider:
    provider = session.get(Provider, provider_id)
    if provider is None:
        raise NotFound("provider")
    reason = _reason(reason)
    if not (display_name or "").strip():
        raise DomainError("invalid_name", "Give the provider a display name.", "display_name")
    before = provider_dict(provider)
    provider.display_name = display_name.strip()[:120]
    provider.api_endpoint = (api_endpoint or "").strip()[:255]
    provider.is_active = bool(is_active)
    after = provider_dict(provider)
    if after == before:
        raise DomainError("no_change", "Nothing changed.", "display_name")
    audit.record(session, "credits.provider_updated", actor=actor, target=provider, before=before, after=after,
                 reason=reason)
    bump(session)
    return provider


def price_dict(p: ModelPrice | None) -> dict | None:
    if p is None:
        return None
    return {"model": p.model_name, "input_price_per_million": str(p.input_price_per_million),
            "output_price_per_million": str(p.output_price_per_million),
            "effective_date": p.effective_date.isoformat()}


def add_price(session, actor, model_name: str, input_price, output_price, reason: str,
              effective_date: datetime | None = None, provider_id: int | None = None) -> ModelPrice:
    """A new price version for a model (a new model needs its provider); never an edit."""
    model_name = (model_name or "").strip()
    if not model_name or len(model_name) > 120:
        raise DomainError("invalid_model", "Give the model name, such as gpt-4-turbo.", "model_name")
    inp, out = parse_price(input_price, "input_price"), parse_price(output_price, "output_price")
    reason = _reason(reason)
    at = _effective(effective_date)
    previous = session.scalars(select(ModelPrice).where(ModelPrice.model_name == model_name)
                               .order_by(ModelPrice.effective_date.desc()).limit(1)).first()
    if previous is not None:
        provider_id = previous.provider_id
    elif provider_id is None or session.get(Provider, provider_id) is None:
        raise DomainError("provider_required", "Pick the provider of this new model.", "provider_id")
    if session.scalar(select(ModelPrice.id).where(ModelPrice.model_name == model_name,
                                                  ModelPrice.effective_date == at)):
        raise DomainError("duplicate_effective_date", "A price for this model starts at that time already.",
                          "effective_date")
    price = ModelPrice(provider_id=provider_id, model_name=model_name, input_price_per_million=inp,
                       output_price_per_million=out, effective_date=at, reason=reason,
                       created_by_id=getattr(actor, "id", None))
    session.add(price)
    session.flush()
    audit.record(session, "credits.price_added", actor=actor, target=price, before=price_dict(previous),
                 after=price_dict(price), reason=reason)
    bump(session)
    return price


def current_prices(session, at: datetime | None = None) -> list[tuple[ModelPrice, ModelPrice | None]]:
    """Each model's price in force at `at`, with the next scheduled version if any."""
    at = at or clock.now()
    rows = session.scalars(select(ModelPrice).order_by(ModelPrice.model_name, ModelPrice.effective_date)).all()
    result: dict[str, list] = {}
    for row in rows:
        entry = result.setdefault(row.model_name, [None, None])
        if row.effective_date <= at:
            entry[0] = row
        elif entry[1] is None:
            entry[1] = row
    return [(cur, nxt) for cur, nxt in result.values() if cur is not None or nxt is not None]


def price_history(session, model_name: str) -> list[ModelPrice]:
    return list(session.scalars(select(ModelPrice).where(ModelPrice.model_name == model_name)
                                .order_by(ModelPrice.effective_date.desc())))


def providers(session) -> list[Provider]:
    return list(session.scalars(select(Provider).order_by(Provider.id)))


def model_names(session) -> list[str]:
    return list(session.scalars(select(ModelPrice.model_name).distinct().order_by(ModelPrice.model_name)))
