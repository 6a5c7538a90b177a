"""Finding users for the staff screens: search, filters and keyset pages."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select

from app.core import sorting
from app.core.errors import DomainError, NotFound
from app.core.pagination import Page
from app.core.web import test_data_scope
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

        account = test_data_scope(args, default="all")  # finding a customer searches every account
        if len(q) > 200:
            raise DomainError("invalid_query", "Search for at most 200 characters.", "q")
        if scope not in SCOPES:
            raise DomainError("invalid_scope", "Show all users, customers only or staff only.", "scope")
        return cls(q, scope, account)


# Sortable columns of the list (?sort=email, ?sort=-created...).
SORTS = {"created": User.created_at, "email": User.email, "status": User.status, "name": User.last_name}
DEFAULT_SORT = "-created"


def search_users(session, filters: UserFilters, *, limit: int = 25, cursor: str | None = None,
                 sort: sorting.Sort | None = None) -> Page:
    """Newest first unless sorted; the query matches email, username, first, last or full name."""
    sort = sort or sorting.parse(None, SORTS, DEFAULT_SORT)
    return sorting.page(session, users_stmt(filters), SORTS[sort.key], User.id, sort, limit, cursor)


def export_rows(session, filters: UserFilters, sort: sorting.Sort):
    """The filtered list in its order, every row, for the CSV export."""
    for u in sorting.stream(session, users_stmt(filters), SORTS[sort.key], User.id, sort):
        yield [u.id, u.email, u.first_name, u.last_name, "staff" if u.is_staff else "customer",
               "test" if u.is_test else "live", u.status, u.created_at.isoformat(),
               u.last_login_at.isoformat() if u.last_login_at else ""]


def users_stmt(filters: UserFilters):
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
    return stmt


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
