"""Fraud detection at redemption time: five detectors, each configurable, each tested at its threshold.

Thresholds live in DEFAULTS and can be overridden per detector with the COUPON_FRAUD setting
(a JSON object in the environment, e.g. {"velocity_abuse": {"max_attempts": 8}}).
Attempts are the redemption rows (every attempt writes one, whatever its outcome), counted
in the attempt's own lane: test-mode traffic never feeds production detectors, and
production traffic never trips a sandbox test.
Detections of the same kind for the same user stay one open row while it awaits review
(a burst adds to its repeat count instead of flooding the queue).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from flask import current_app, has_app_context
from sqlalchemy import bindparam, func, or_, select

from app.core import testmode
from app.core import pg
from app.coupons import sources
from app.coupons.models import Coupon, FraudDetection, Redemption
from app.coupons.validation import Attempt

# Browser automation and crawlers. HTTP libraries (curl, okhttp, python-requests, Go's client...)
# are how ordinary apps and servers talk to an API: they say nothing about the customer.
AUTOMATION_AGENTS = ["headlesschrome", "phantomjs", "selenium", "webdriver", "puppeteer", "playwright",
                     "scrapy", "bot", "crawler", "spider"]

DEFAULTS: dict[str, dict] = {
    # >= max_attempts attempts (this one included) by one user within the window, or attempts by
    # >= max_customers_per_ip distinct customers from one IP (an office or a carrier NAT shares one).
    "velocity_abuse": {"enabled": True, "max_attempts": 5, "max_customers_per_ip": 10, "window_minutes": 60,
                       "severity": "high", "blocks": True},
    # >= distinct_ips addresses (this one included) for one user within the window.
    "ip_switching": {"enabled": True, "distinct_ips": 3, "window_minutes": 15, "severity": "medium",
                     "blocks": False},
    # An automation user agent, or the user's last min_attempts attempts spaced so evenly that
    # the longest and shortest gap differ by at most max_jitter_seconds.
    "bot_pattern": {"enabled": True, "min_attempts": 4, "window_minutes": 60, "max_jitter_seconds": 1.0,
                    "user_agents": AUTOMATION_AGENTS, "severity": "critical", "blocks": True},
    # A discount coupon on an invoice that already carries another, when either is not stackable
    # (the same coupon twice is the per-user limit's business).
    "stacking_abuse": {"enabled": True, "severity": "high", "blocks": True},
    # A coupon for licensed devices redeemed from a fingerprint none of the user's licenses knows.
    "device_fingerprint_mismatch": {"enabled": True, "severity": "medium", "blocks": False},
}
INVOICE_DISCOUNTS = ("percentage", "fixed_amount")


def settings() -> dict[str, dict]:
    overrides = (current_app.config.get("COUPON_FRAUD") or {}) if has_app_context() else {}
    return {name: {**values, **(overrides.get(name) or {})} for name, values in DEFAULTS.items()}


@dataclass
class Finding:
    detection_type: str
    severity: str
    blocks: bool
    reason: str
    details: dict = field(default_factory=dict)


def _finding(cfg: dict, detection_type: str, reason: str, details: dict) -> Finding:
    return Finding(detection_type, cfg["severity"], bool(cfg["blocks"]), reason, details)


def _recent_statement(by_ip: bool):
    """The attempts of the user (or from the IP) in a window of time and a lane; built once."""
    who = Redemption.user_id == bindparam("user_id")
    if by_ip:
        who = or_(who, Redemption.ip_address == bindparam("ip"))
    return (select(Redemption.created_at, Redemption.ip_address, Redemption.user_id)
            .where(who, Redemption.is_test == bindparam("is_test"), Redemption.created_at > bindparam("since"),
                   Redemption.created_at <= bindparam("at"))
            .order_by(Redemption.created_at))


_RECENT = {True: _recent_statement(by_ip=True), False: _recent_statement(by_ip=False)}


def _recent_attempts(session, attempt: Attempt, minutes: int):
    """The attempts of the user or from the IP within the widest window, in one query."""
    return pg.run(session, _RECENT[bool(attempt.ip_address)], {
        "user_id": attempt.user.id, "ip": attempt.ip_address, "is_test": attempt.is_test,
        "since": attempt.at - timedelta(minutes=minutes), "at": attempt.at}).fetchall()


def _velocity(cfg: dict, attempt: Attempt, history, ip_history) -> Finding | None:
    since = attempt.at - timedelta(minutes=cfg["window_minutes"])
    window = f"{cfg['window_minutes'] // 60}h" if cfg["window_minutes"] % 60 == 0 else f"{cfg['window_minutes']}m"
    user_times = [t for t, _ in history if t > since] + [attempt.at]
    if len(user_times) >= cfg["max_attempts"]:
        return _finding(cfg, "velocity_abuse", f"Velocity abuse detected - {len(user_times)} attempts in {window}",
                        {"velocity": len(user_times), "time_window": window, "by": "user",
                         "ip_address": attempt.ip_address,
                         "attempts": [t.strftime("%H:%M:%S") for t in user_times[-10:]]})
    if not attempt.ip_address:
        return None
    customers = {uid for t, uid in ip_history if t > since} | {attempt.user.id}
    if len(customers) < cfg["max_customers_per_ip"]:
        return None
    return _finding(cfg, "velocity_abuse",
                    f"Velocity abuse detected - {len(customers)} customers from one IP in {window}",
                    {"velocity": len(customers), "time_window": window, "by": "ip", "ip_address": attempt.ip_address,
                     "distinct_customers": len(customers)})


def _ip_switching(cfg: dict, attempt: Attempt, history) -> Finding | None:
    if not attempt.ip_address:
        return None
    since = attempt.at - timedelta(minutes=cfg["window_minutes"])
    ips = list(dict.fromkeys([ip for t, ip in history if t > since and ip] + [attempt.ip_address]))
    if len(ips) < cfg["distinct_ips"]:
        return None
    return _finding(cfg, "ip_switching", f"{len(ips)} IP addresses in {cfg['window_minutes']} minutes",
                    {"ip_addresses": ips, "time_span_minutes": cfg["window_minutes"]})


def _bot(cfg: dict, attempt: Attempt, history) -> Finding | None:
    agent = (attempt.user_agent or "").lower()
    hits = [marker for marker in cfg["user_agents"] if marker in agent]
    if hits:
        return _finding(cfg, "bot_pattern", "Automation user agent",
                        {"suspicious_behaviors": ["automation_user_agent"], "user_agent": attempt.user_agent,
                         "matched": hits, "confidence_score": 0.95})
    since = attempt.at - timedelta(minutes=cfg["window_minutes"])
    times = ([t for t, _ in history if t > since] + [attempt.at])[-int(cfg["min_attempts"]):]
    if len(times) < cfg["min_attempts"]:
        return None
    gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:])]
    spread = max(gaps) - min(gaps)
    if spread > cfg["max_jitter_seconds"]:
        return None
    return _finding(cfg, "bot_pattern", "Machine-regular attempts",
                    {"suspicious_behaviors": ["regular_intervals"], "intervals_seconds": [round(g, 3) for g in gaps],
                     "jitter_seconds": round(spread, 3), "confidence_score": 0.9})


def _stacking(session, cfg: dict, coupon: Coupon, attempt: Attempt) -> Finding | None:
    if coupon.discount_type not in INVOICE_DISCOUNTS or not (attempt.invoice_id or attempt.subscription_id):
        return None
    stmt = (select(Redemption.id, Coupon.code, Coupon.is_stackable).join(Coupon, Coupon.id == Redemption.coupon_id)
            .where(Redemption.status.in_(("success", "pending")), Redemption.is_test.is_(attempt.is_test),
                   Coupon.discount_type.in_(INVOICE_DISCOUNTS), Redemption.coupon_id != coupon.id))
    if attempt.invoice_id:
        stmt = stmt.where(Redemption.invoice_id == attempt.invoice_id)
    else:  # not yet invoiced: the subscription's next invoice
        stmt = stmt.where(Redemption.subscription_id == attempt.subscription_id, Redemption.invoice_id.is_(None))
    existing = session.execute(stmt).all()
    if not existing or (coupon.is_stackable and all(row.is_stackable for row in existing)):
        return None
    return _finding(cfg, "stacking_abuse", "A non-stackable coupon is already on this invoice",
                    {"invoice_id": attempt.invoice_id, "subscription_id": attempt.subscription_id,
                     "existing_coupons": [row.code for row in existing], "coupon": coupon.code})


def _device(session, cfg: dict, coupon: Coupon, attempt: Attempt) -> Finding | None:
    if not coupon.requires_licensed_device:
        return None
    fingerprint = (attempt.device_fingerprint or "").lower() or None
    known = sources.licensed_fingerprints(session, attempt.user.id)
    if fingerprint and fingerprint in known:
        return None
    return _finding(cfg, "device_fingerprint_mismatch", "Device fingerprint unknown for this user",
                    {"fingerprint": fingerprint, "licensed_devices": len(known)})


def detect(session, coupon: Coupon, attempt: Attempt, *, only: tuple[str, ...] | None = None) -> list[Finding]:
    """Run the enabled detectors (or only the named ones) on an attempt about to be recorded."""
    cfg = settings()
    on = {name for name, values in cfg.items() if values["enabled"] and (only is None or name in only)}
    findings: list[Finding | None] = []
    history, ip_history = [], []
    if on & {"velocity_abuse", "ip_switching", "bot_pattern"}:
        minutes = max(cfg[n]["window_minutes"] for n in ("velocity_abuse", "ip_switching", "bot_pattern") if n in on)
        rows = _recent_attempts(session, attempt, minutes)
        history = [(t, ip) for t, ip, user_id in rows if user_id == attempt.user.id]
        ip_history = [(t, uid) for t, ip, uid in rows if attempt.ip_address and ip == attempt.ip_address]
    if "velocity_abuse" in on:
        findings.append(_velocity(cfg["velocity_abuse"], attempt, history, ip_history))
    if "ip_switching" in on:
        findings.append(_ip_switching(cfg["ip_switching"], attempt, history))
    if "bot_pattern" in on:
        findings.append(_bot(cfg["bot_pattern"], attempt, history))
    if "stacking_abuse" in on:
        findings.append(_stacking(session, cfg["stacking_abuse"], coupon, attempt))
    if "device_fingerprint_mismatch" in on:
        findings.append(_device(session, cfg["device_fingerprint_mismatch"], coupon, attempt))
    return [f for f in findings if f is not None]


def record(session, findings: list[Finding], coupon: Coupon, attempt: Attempt,
           redemption: Redemption | None) -> list[FraudDetection]:
    """Store findings; an open detection of the same kind for the user absorbs a repeat."""
    rows = []
    cfg = settings()
    for finding in findings:
        minutes = cfg[finding.detection_type].get("window_minutes", 60)
        open_row = session.scalar(
            select(FraudDetection).where(
                FraudDetection.detection_type == finding.detection_type,
                FraudDetection.user_id == attempt.user.id, FraudDetection.coupon_id == coupon.id,
                FraudDetection.is_test.is_(attempt.is_test), FraudDetection.reviewed_at.is_(None),
                FraudDetection.created_at > attempt.at - timedelta(minutes=minutes))
            .order_by(FraudDetection.created_at.desc()).limit(1))
        if open_row is not None:
            details = dict(open_row.details or {})
            details["repeat_count"] = int(details.get("repeat_count", 0)) + 1
            details["last_seen"] = attempt.at.isoformat()
            details["latest"] = finding.details
            open_row.details = details
            open_row.blocked = open_row.blocked or finding.blocks
            rows.append(open_row)
            continue
        row = FraudDetection(coupon_id=coupon.id, user_id=attempt.user.id,
                             redemption_id=getattr(redemption, "id", None), detection_type=finding.detection_type,
                             severity=finding.severity, blocked=finding.blocks, details=finding.details,
                             ip_address=attempt.ip_address, is_flagged=True, created_at=attempt.at,
                             is_test=testmode.is_test_row(attempt))
        session.add(row)
        rows.append(row)
    session.flush()
    return rows


def queue(session, include_test: bool = False, show: str = "open"):
    """The review queue: open flags first (newest first), or the reviewed ones."""
    stmt = select(FraudDetection).where(FraudDetection.is_flagged.is_(True))
    stmt = stmt.where(FraudDetection.reviewed_at.is_(None) if show == "open" else FraudDetection.reviewed_at.is_not(None))
    if not include_test:
        stmt = stmt.where(FraudDetection.is_test.is_(False))
    return stmt


def open_count(session, include_test: bool = False) -> int:
    """How many flags wait for review (the queue's length)."""
    return session.scalar(queue(session, include_test).with_only_columns(func.count(FraudDetection.id))) or 0
