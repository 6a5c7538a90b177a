"""RBAC test helpers: role lookups, form posts from a browser-like client."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from app.rbac.models import Role

HTMX = {"HX-Request": "true", "HX-Target": "access"}
OFFICE = {"REMOTE_ADDR": "203.0.113.45", "HTTP_USER_AGENT": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36"}


@pytest.fixture
def role_id(session):
    def lookup(name: str) -> int:
        return session.scalar(select(Role.id).where(Role.name == name))

    return lookup


@pytest.fixture
def staff(login_as, sudo):
    """A signed-in client in sudo mode, as a new user holding `roles`."""

    def make(*roles: str, user=None):
        return sudo(login_as(*roles, user=user))

    return make
