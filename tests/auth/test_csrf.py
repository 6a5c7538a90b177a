"""CSRF is enforced on forms and HTMX requests (the main fixture app turns it off)."""
from __future__ import annotations

import pytest


@pytest.fixture
def csrf_client(app):
    app.config["WTF_CSRF_ENABLED"] = True
    yield app.test_client()
    app.config["WTF_CSRF_ENABLED"] = False


def test_post_without_token_is_refused(csrf_client, make_user):
    user = make_user(roles=("ops",))
    response = csrf_client.post("/auth/login", data={"email": user.email, "password": "CorrectHorse9Battery"})
    assert response.status_code == 400
    assert b"CSRF" in response.data


def test_htmx_request_with_header_token_passes(csrf_client, make_user):
    import re

    user = make_user(roles=("ops",))
    page = csrf_client.get("/auth/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    response = csrf_client.post("/auth/login", data={"email": user.email, "password": "CorrectHorse9Battery"},
                                headers={"X-CSRFToken": token, "HX-Request": "true"})
    assert response.status_code == 302
