"""Issue 15 item 11: the upgrade quote took the license key (and fingerprint) as query parameters,
so keys ended up in request logs (the dev server's and any proxy's request line). The key is
accepted in the documented X-License-Key header only; a key in the URL is refused, and a log line
that carries one anyway (a proxy or the dev server logging a client's URL) has it redacted."""
from __future__ import annotations

import hashlib
import logging

import pytest

FINGERPRINT = hashlib.sha256(b"CPU:i7 | MAC:00:1A | DISK:SER123 | OS:Win10").hexdigest()


@pytest.fixture
def activated(session, make_user):
    from app.licensing import activations, service
    from app.licensing.seed import seed_versions

    seed_versions(session)
    staff = make_user(roles=("admin",))
    lic = service.create_license(session, owner=make_user(), actor=staff, purchase_price="299.99",
                                 purchased_version="1.0.0")
    activations.activate(session, lic, FINGERPRINT)
    session.commit()
    return lic


def test_a_license_key_in_the_query_string_is_refused(client, session, activated, make_api_key, caplog):
    from app.users.models import User

    caplog.set_level(logging.DEBUG)
    key = activated.license_key
    for query in (f"license_key={key}&fingerprint={FINGERPRINT}", f"license_key={key}"):
        response = client.get(f"/api/v1/licenses/upgrade-quote?to=2.0.0&{query}",
                              headers={"X-License-Fingerprint": FINGERPRINT})
        assert response.status_code == 400, response.json
        assert response.json["error"]["code"] == "license_key_in_url"
        assert response.json["error"]["param"] == "license_key"
        assert "X-License-Key" in response.json["error"]["message"]
    # Also with an API key naming the license: the header, never the URL.
    api = make_api_key(session.get(User, activated.user_id), "production")
    refused = client.get(f"/api/v1/licenses/upgrade-quote?to=2.0.0&license_key={key}", headers=api.headers)
    assert refused.status_code == 400
    assert client.get("/api/v1/licenses/upgrade-quote?to=2.0.0",
                      headers={**api.headers, "X-License-Key": key}).status_code == 200
    # The documented header form still works.
    ok = client.get("/api/v1/licenses/upgrade-quote?to=2.0.0",
                    headers={"X-License-Key": key, "X-License-Fingerprint": FINGERPRINT})
    assert ok.status_code == 200
    assert key not in caplog.text


def test_a_license_key_is_redacted_from_every_log_line(app, activated, caplog):
    caplog.set_level(logging.INFO)
    key = activated.license_key
    lower = key.lower()
    # The dev server's request line (werkzeug), and the app's own loggers.
    logging.getLogger("werkzeug").info('%s - - [06/Dec/2026 18:00:00] "%s" %s -', "127.0.0.1",
                                       f"GET /api/v1/licenses/upgrade-quote?to=2.0.0&license_key={lower} HTTP/1.1",
                                       "400")
    logging.getLogger("app.licensing").warning("looked up %s", key)
    logging.getLogger("gunicorn.access").info("GET /x?license_key=%s", key)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "license_key=[redacted]" in text and "looked up PERM-[redacted]" in text
    assert key not in text and lower not in text
