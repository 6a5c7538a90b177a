"""Every validation code, the eligibility edges, bad input, and the Redis cache invalidation."""
import pytest

from tests.support.services import redis_or_unavailable

from app.core.errors import DomainError
from app.licensing import activations, service, validation
from app.licensing.models import Activation
from tests.licensing.conftest import fp

A, B = fp("device-a"), fp("device-b")


def check(session, lic, fingerprint=A, version="1.2.0"):
    return validation.validate(session, lic.license_key, fingerprint, version)


def test_valid_then_version_edges(session, make_license):
    lic = make_license(purchased_version="1.0.0", eligible_until_version="2.0.0")
    activations.activate(session, lic, A)
    result = check(session, lic)
    assert (result.valid, result.code) == (True, "VALID")
    assert result.as_dict()["eligible_from"] == "1.0.0" and result.as_dict()["eligible_until"] == "2.0.0"
    assert check(session, lic, version="1.9.9").code == "VALID"
    assert check(session, lic, version="2.0.0-beta.1").code == "VALID"  # SemVer: below 2.0.0
    assert check(session, lic, version="2.0.0").code == "VERSION_NOT_ELIGIBLE"
    assert check(session, lic, version="0.9.0").code == "VERSION_NOT_ELIGIBLE"
    assert not check(session, lic, version="2.0.0").valid


def test_device_codes(session, make_license):
    lic = make_license(max_activations=2)
    assert check(session, lic).code == "NOT_ACTIVATED"
    activations.activate(session, lic, B)
    assert check(session, lic).code == "FINGERPRINT_MISMATCH"  # active elsewhere, a seat is free
    activations.activate(session, lic, fp("device-c"))
    assert check(session, lic).code == "TOO_MANY_ACTIVATIONS"  # every seat taken by others
    assert check(session, lic, fingerprint=B).code == "VALID"


def test_over_subscribed_license_answers_too_many_even_for_an_active_device(session, make_license):
    lic = make_license(max_activations=1)
    activations.activate(session, lic, A)
    # imported data can carry more devices than seats (the service never allows it)
    session.add(Activation(license_id=lic.id, license=lic, fingerprint=B, status="active"))
    session.flush()
    assert check(session, lic).code == "TOO_MANY_ACTIVATIONS"


@pytest.mark.parametrize("action,code", [("suspend", "SUSPENDED"), ("revoke", "REVOKED")])
def test_status_codes(session, make_license, staff, action, code):
    lic = make_license()
    activations.activate(session, lic, A)
    getattr(service, action)(session, lic, actor=staff, reason="abuse investigation")
    result = check(session, lic)
    assert (result.valid, result.code) == (False, code)


def test_expired_by_date_even_before_the_job_runs(session, make_license, frozen_clock):
    from datetime import timedelta

    lic = make_license(expires_at=frozen_clock.now() + timedelta(hours=1))
    activations.activate(session, lic, A)
    assert check(session, lic).code == "VALID"
    frozen_clock.advance(timedelta(hours=2))
    assert check(session, lic).code == "EXPIRED"


def test_pending_license_is_not_activated(session, make_license):
    assert check(session, make_license(status="pending")).code == "NOT_ACTIVATED"


@pytest.mark.parametrize("key,fingerprint,version,code,field,status", [
    ("PERM-AAAA-BBBB-CCCC-DDDD", A, "1.0.0", "license_not_found", "license_key", 404),
    ("not a key!", A, "1.0.0", "invalid_license_key", "license_key", 422),
    (None, A, "1.0.0", "missing_license_key", "license_key", 422),
    ("{key}", "xyz", "1.0.0", "invalid_fingerprint", "fingerprint", 422),
    ("{key}", A, "1.0", "invalid_version", "version", 422),
    ("{key}", A, None, "missing_version", "version", 422),
])
def test_bad_input(session, make_license, key, fingerprint, version, code, field, status):
    lic = make_license()
    with pytest.raises(DomainError) as err:
        validation.validate(session, lic.license_key if key == "{key}" else key, fingerprint, version)
    assert (err.value.code, err.value.field, err.value.status) == (code, field, status)


def test_a_license_of_another_owner_is_not_found_for_an_api_key(session, make_license, customer):
    lic = make_license()
    with pytest.raises(DomainError) as err:
        validation.validate(session, lic.license_key, A, "1.0.0", owner_id=customer().id)
    assert err.value.code == "license_not_found"


def test_keys_are_matched_case_insensitively(session, make_license):
    lic = make_license()
    activations.activate(session, lic, A)
    assert validation.validate(session, f"  {lic.license_key.lower()} ", A.upper(), "1.0.0").code == "VALID"


@pytest.fixture
def redis_cache(app):
    """Point the app at a real Redis (database 15) for the duration of one test."""
    from redis import Redis

    url = "redis://127.0.0.1:6379/15"
    redis_or_unavailable(url)
    old, old_ttl = app.config["REDIS_URL"], app.config["LICENSE_CACHE_SECONDS"]
    app.config["REDIS_URL"], app.config["LICENSE_CACHE_SECONDS"] = url, 15  # the cache is off by default
    app.extensions.pop("rephlo_redis", None)
    conn = Redis.from_url(url)
    yield conn
    for name in conn.scan_iter("rephlo:licval:*"):
        conn.delete(name)
    app.config["REDIS_URL"], app.config["LICENSE_CACHE_SECONDS"] = old, old_ttl
    app.extensions.pop("rephlo_redis", None)


@pytest.mark.redis
def test_cached_state_is_dropped_on_every_status_change(session, make_license, staff, redis_cache):
    from app.licensing import cache

    lic = make_license()
    activations.activate(session, lic, A)
    session.commit()
    assert check(session, lic).code == "VALID"
    assert cache.get(lic.license_key, A)["status"] == "active"  # the answer came from / went to Redis
    assert redis_cache.ttl(cache._name(lic.license_key)) > 0
    service.revoke(session, lic, actor=staff, reason="chargeback fraud")
    session.commit()
    assert cache.get(lic.license_key, A) is None
    assert check(session, lic).code == "REVOKED"


@pytest.mark.redis
def test_the_cache_is_off_unless_configured(app, session, make_license, redis_cache):
    """Off by default (app/licensing/cache.py: its round trips cost more than they saved)."""
    from app.config import load_config
    from app.licensing import cache

    assert load_config()["LICENSE_CACHE_SECONDS"] == 0
    app.config["LICENSE_CACHE_SECONDS"] = 0  # as a deployment that sets nothing, with REDIS_URL
    lic = make_license()
    activations.activate(session, lic, A)
    session.commit()
    assert check(session, lic).code == "VALID"
    assert not list(redis_cache.scan_iter("rephlo:licval:*"))
    assert cache.get(lic.license_key, A) is None


@pytest.mark.redis
def test_a_cached_answer_is_served_without_the_database(session, make_license, redis_cache):
    from app.licensing import cache

    lic = make_license()
    activations.activate(session, lic, A)
    session.commit()
    check(session, lic)
    # change the row behind the service's back: the cache answers until its TTL
    # (proves the hit), and any service change drops it.
    lic.status = "suspended"
    session.flush()
    assert check(session, lic).code == "VALID"
    cache.invalidate(session, lic.license_key)
    assert check(session, lic).code == "SUSPENDED"
