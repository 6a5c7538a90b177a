"""Finding users for the staff screens: search, filters and keyset pages."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select

from app.core.errors import DomainError, NotFound
from app.core.pagination import Page, keyset_page
from app.users.models import User

SCOPES = ("all", "customers", "staff")
ACCOUNTS = ("all", "production", "test")


@dataclass(frozen=True)
class UserFilters:
    q: str = ""
    scope: str = "all"  # all | staff | customers: support looks customers up here
    account: str = "all"  # all | production | test

    @classmethod
    def parse(cls, args) -> "UserFilters":
        """From query-string args; unknown values are an error, not silently widened."""
        q = (args.get("q") or "").strip()
        scope = args.get("scope") or "all"
        account = args.get("account") or "all"
        if len(q) > 200:
            raise DomainError("invalid_query", "Search for at most 200 characters.", "q")
        if scope not in SCOPES:
            raise DomainError("invalid_scope", "Show all users, customers only or staff only.", "scope")
        if account not in ACCOUNTS:
            raise DomainError("invalid_account", "Account type is all, production or test.", "account")
        return cls(q, scope, account)


def search_users(session, filters: UserFilters, *, limit: int = 25, cursor: str | None = None) -> Page:
    """Newest first; the query matches email, username, first, last or full name."""
    stmt = select(User).where(User.deleted_at.is_(None))
    if filters.scope == "staff":
        stmt = stmt.where(User.is_staff.is_(True))
    elif filters.scope == "customers":
        stmt = stmt.where(User.is_staff.is_(False))
    if filters.account == "production":
        stmt = stmt.where(User.is_test.is_(False))
    elif filters.account == "test":
        stmt = stmt.where(User.is_test.is_(True))
    if filters.q:
        term = filters.q
        full_name = User.first_name + " " + User.last_name
        stmt = stmt.where(or_(User.email.icontains(term, autoescape=True),
                              User.username.icontains(term, autoescape=True),
                              full_name.icontains(term, autoescape=True)))
    return keyset_page(session, stmt, User, limit, cursor)


def get_user(session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None or user.deleted_at is not None:
        raise NotFound("user")
    return user


def emails_for(session, ids) -> dict[int, str]:
    """Emails of the given user ids (for "assigned by" columns), in one query."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return {row.id: row.email for row in session.execute(select(User.id, User.email).where(User.id.in_(wanted)))}
