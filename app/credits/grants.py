"""Staff grants and deductions, with per-role caps and approval requests above the cap.

Caps are per transaction (DESIGN.md §4: ops $100, support $50, at CREDITS_PER_USD). A staff
member's cap is the most generous one among their roles that hold credits.grant: a listed
role gives its cap, an unlisted role at admin level (hierarchy <= 2) gives none, any other
unlisted role (or credits.grant held only through an override) gives the smallest listed cap.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update

from app.core import audit, clock, testmode
from app.core.audit import require_reason
from app.core.errors import DomainError, NotFound, PermissionDenied
from app.core.money import CREDITS_PER_USD
from app.credits import balances
from app.credits.models import CreditGrantRequest
from app.rbac.catalogue import CREDIT_GRANT_CAP_USD
from app.rbac.service import active_assignments, has_permission
from app.users.models import User

ADMIN_LEVEL = 2
_UNKNOWN = object()  # check_grant's cap when the caller has not looked it up


def cap_credits(session, actor) -> int | None:
    """The actor's per-transaction grant cap in credits; None means no cap."""
    holding = [a.role for a in active_assignments(session, actor.id)
               if "credits.grant" in {p.name for p in a.role.permissions}]
    smallest = min(CREDIT_GRANT_CAP_USD.values()) * CREDITS_PER_USD
    if not holding:
        return smallest
    caps = []
    for role in holding:
        if role.name in CREDIT_GRANT_CAP_USD:
            caps.append(CREDIT_GRANT_CAP_USD[role.name] * CREDITS_PER_USD)
        elif role.hierarchy <= ADMIN_LEVEL:
            return None
        else:
            caps.append(smallest)
    return max(caps)


def _reason(reason: str | None) -> str:
    return require_reason(reason, minimum=3)


def _require(session, actor, permission: str) -> None:
    if not has_permission(session, actor, permission):
        raise PermissionDenied(f"You need the {permission} permission.", permission=permission)


@dataclass(frozen=True)
class GrantCheck:
    """A grant that passed every rule: its user, its cleaned reason, and the actor's cap."""

    user: User
    reason: str
    cap: int | None

    def above_cap(self, amount: int) -> bool:
        return self.cap is not None and amount > self.cap


def check_grant(session, actor, user_id: int, amount: int, reason: str | None, expires_at: datetime | None = None,
                cap=_UNKNOWN, permission: str = "credits.grant") -> GrantCheck:
    """Every rule of a staff grant, in one place for the screen, the API's single allocation,
    each row of a bulk allocation and a request for a grant: the permission, the amount, the
    reason, a live user who is not the actor, an expiry in the future (and the permission to set
    one). Raises the first broken rule as a DomainError naming its field; the cap is the
    caller's decision (a single grant above it files an approval request, a bulk row above it is
    refused). `cap`: the actor's, when the caller has it already (a batch). `permission`: what
    the actor must hold, credits.grant unless it only asks an administrator (request_grant)."""
    _require(session, actor, permission)
    balances.check_amount(amount)
    reason = _reason(reason)
    user = balances._user(session, user_id)
    if user.id == actor.id:
        raise PermissionDenied("You cannot grant credits to yourself.", code="self_grant")
    if expires_at is not None and expires_at <= clock.now():
        raise DomainError("invalid_expiry", "The expiry must be in the future.", "expires_at")
    if expires_at is not None:  # credits that lapse: a decision of its own
        _require(session, actor, "credits.adjust_expiration")
    return GrantCheck(user, reason, cap_credits(session, actor) if cap is _UNKNOWN else cap)


def grant(session, actor, user_id: int, amount: int, reason: str, expires_at: datetime | None = None,
          source: str = "admin_grant", cap=_UNKNOWN) -> dict:
    """Grant bonus credits, or file an approval request when the amount is above the actor's cap."""
    checked = check_grant(session, actor, user_id, amount, reason, expires_at, cap)
    user, reason = checked.user, checked.reason
    if checked.above_cap(amount):
        request = CreditGrantRequest(user_id=user.id, amount=amount, reason=reason, expires_at=expires_at,
                                     requested_by_id=actor.id, is_test=testmode.is_test_row(user))
        session.add(request)
        session.flush()
        audit.record(session, "credits.grant_requested", actor=actor, target=user, reason=reason,
                     after={"amount": amount, "cap": checked.cap, "request_id": request.id})
        return {"status": "pending_approval", "request": request, "cap": checked.cap}
    allocation_id, view = balances.allocate(session, user.id, amount, source, actor=actor, reason=reason,
                                            expires_at=expires_at)
    audit.record(session, "credits.granted", actor=actor, target=user, reason=reason,
                 before={"total": view.total - amount},
                 after={"amount": amount, "source": source, "total": view.total, "allocation_id": allocation_id})
    return {"status": "granted", "allocation_id": allocation_id, "balance": view}


def request_grant(session, actor, user_id: int, amount: int, reason: str) -> CreditGrantRequest:
    """A grant asked for by someone who may not grant (support without credits.grant): always an
    approval request for an administrator; no credits move now."""
    checked = check_grant(session, actor, user_id, amount, reason, cap=None, permission="credits.view_balance")
    user, reason = checked.user, checked.reason
    request = CreditGrantRequest(user_id=user.id, amount=amount, reason=reason, requested_by_id=actor.id,
                                 is_test=testmode.is_test_row(user))
    session.add(request)
    session.flush()
    audit.record(session, "credits.grant_requested", actor=actor, target=user, reason=reason,
                 after={"amount": amount, "request_id": request.id, "asked_without_permission": True})
    return request


def _decide(session, actor, request_id: int, status: str, note: str | None) -> CreditGrantRequest:
    _require(session, actor, "credits.grant")
    request = session.get(CreditGrantRequest, request_id)
    if request is None:
        raise NotFound("grant request", "request_id")
    if request.requested_by_id == actor.id:
        raise PermissionDenied("You cannot decide on your own request.", code="self_approval")
    if request.user_id == actor.id:
        raise PermissionDenied("You cannot approve credits for yourself.", code="self_grant")
    cap = cap_credits(session, actor)
    if status == "approved" and cap is not None and request.amount > cap:
        raise PermissionDenied(f"This grant is above your own cap of {cap:,} credits.", code="above_cap")
    # Only one decision wins, even if two approvers click at once.
    done = session.execute(update(CreditGrantRequest).where(CreditGrantRequest.id == request_id,
                                                            CreditGrantRequest.status == "pending")
                           .values(status=status, decided_by_id=actor.id, decided_at=clock.now(),
                                   decision_note=(note or "").strip() or None)
                           .execution_options(synchronize_session=False)).rowcount
    if not done:
        raise DomainError("already_decided", "This request has been decided already.", None, status=409)
    session.refresh(request)
    return request


def approve(session, actor, request_id: int, note: str | None = None) -> dict:
    request = _decide(session, actor, request_id, "approved", note)
    allocation_id, view = balances.allocate(session, request.user_id, request.amount, "admin_grant", actor=actor,
                                            reason=request.reason, expires_at=request.expires_at,
                                            grant_request_id=request.id)
    audit.record(session, "credits.grant_approved", actor=actor, target=request.user, reason=request.reason,
                 after={"amount": request.amount, "request_id": request.id, "allocation_id": allocation_id,
                        "requested_by": request.requested_by.email if request.requested_by else None,
                        "note": request.decision_note})
    return {"request": request, "allocation_id": allocation_id, "balance": view}


def reject(session, actor, request_id: int, note: str | None = None) -> CreditGrantRequest:
    note = require_reason(note, field="note")
    request = _decide(session, actor, request_id, "rejected", note)
    audit.record(session, "credits.grant_rejected", actor=actor, target=request.user, reason=note,
                 after={"amount": request.amount, "request_id": request.id})
    return request


def staff_deduct(session, actor, user_id: int, amount: int, reason: str) -> dict:
    """A staff correction: credits out, with reason; it does not count toward the user's cap."""
    _require(session, actor, "credits.deduct")
    balances.check_amount(amount)
    reason = _reason(reason)
    user = balances._user(session, user_id)
    deduction_id, view = balances.deduct(session, user.id, amount, "custom", actor=actor, reason=reason,
                                         toward_cap=False)
    audit.record(session, "credits.deducted", actor=actor, target=user, reason=reason,
                 before={"total": view.total + amount},
                 after={"amount": amount, "total": view.total, "deduction_id": deduction_id})
    return {"deduction_id": deduction_id, "balance": view}


def pending_requests(session, user_id: int | None = None) -> list[CreditGrantRequest]:
    stmt = select(CreditGrantRequest).where(CreditGrantRequest.status == "pending") \
        .order_by(CreditGrantRequest.created_at.desc())
    if user_id is not None:
        stmt = stmt.where(CreditGrantRequest.user_id == user_id)
    return list(session.scalars(stmt))


def can_approve(session, actor, request: CreditGrantRequest) -> bool:
    if actor.id in (request.requested_by_id, request.user_id):
        return False
    if not has_permission(session, actor, "credits.grant"):
        return False
    cap = cap_credits(session, actor)
    return cap is None or request.amount <= cap


def set_request_expiry(session, actor, request_id: int, expires_at: datetime | None, reason: str) -> CreditGrantRequest:
    """Change when the credits of a pending grant request lapse (None: never), before it is decided."""
    _require(session, actor, "credits.adjust_expiration")
    reason = _reason(reason)
    request = session.get(CreditGrantRequest, request_id)
    if request is None:
        raise NotFound("grant request", "request_id")
    if request.status != "pending":
        raise DomainError("already_decided", "This request was decided already.", "expires_on", status=409)
    if expires_at is not None and expires_at <= clock.now():
        raise DomainError("invalid_expiry", "The expiry must be in the future.", "expires_on")
    before = request.expires_at
    request.expires_at = expires_at
    audit.record(session, "credits.grant_expiry_changed", actor=actor, target=request.user, reason=reason,
                 before={"request_id": request.id, "expires_at": before.isoformat() if before else None},
                 after={"expires_at": expires_at.isoformat() if expires_at else None})
    return request
