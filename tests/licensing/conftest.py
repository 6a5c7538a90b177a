"""Licensing fixtures: the seed's app versions and a license factory going through the service."""
from __future__ import annotations

import hashlib
import uuid

import pytest


def fp(text: str | None = None) -> str:
    """A valid machine fingerprint: the SHA-256 of some text."""
    return hashlib.sha256((text or uuid.uuid4().hex).encode()).hexdigest()


@pytest.fixture
def versions(session):
    from app.licensing.seed import seed_versions

    seed_versions(session)
    session.commit()
    return session


@pytest.fixture
def customer(session):
    """A user without a password: licensing tests need many owners, and hashing one costs ~0.5 s."""
    from app.users.models import User

    def make(email: str | None = None, *, test: bool = False, **fields):
        user = User(email=email or f"owner-{uuid.uuid4().hex[:10]}@example.com", first_name="Owner",
                    account_type="test" if test else "standard", **fields)
        session.add(user)
        session.flush()
        return user

    return make


@pytest.fixture
def staff(session, customer):
    """The actor of service-level staff actions (an admin; no sign-in needed, so no password)."""
    from app.rbac.models import Role, RoleAssignment

    user = customer(is_staff=True)
    role = session.query(Role).filter_by(name="admin").one()
    session.add(RoleAssignment(user_id=user.id, role_id=role.id, reason="test fixture"))
    session.flush()
    return user


@pytest.fixture
def make_license(session, customer, staff):
    from app.licensing import service

    def make(owner=None, *, purchased_version="1.0.0", eligible_until_version=None, max_activations=3,
             price="299.99", status="active", **kw):
        owner = owner or customer()
        lic = service.create_license(session, owner=owner, actor=staff, purchase_price=price,
                                     purchased_version=purchased_version,
                                     eligible_until_version=eligible_until_version,
                                     max_activations=max_activations, status=status, **kw)
        # Into the test's outer transaction (still rolled back at the end): a failing API call
        # rolls back its own savepoint and must not take the test's setup with it.
        session.commit()
        return lic

    return make
