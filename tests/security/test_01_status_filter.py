"""Issue 15 item 1: a `status` filter in the query string must never become the HTTP status.

The outbox and OAuth-client screens passed their filter to render() as `status=`, which is
render()'s response status: `?status=queued` answered `0 queued` and a CR/LF payload split the
response. The filters are now template variables of their own, and render() refuses any
status that is not an HTTP status code, so a future collision fails loudly instead.
"""
from __future__ import annotations

import pytest

SPLIT = "200 OK\r\nContent-Type: text/html\r\n\r\n<script>alert(1)</script>"


@pytest.mark.parametrize("path", ["/admin/outbox", "/admin/oauth-clients"])
@pytest.mark.parametrize("value", ["queued", "active", SPLIT])
def test_status_filter_is_not_the_response_status(login_as, path, value):
    client = login_as("analyst")
    response = client.get(path, query_string={"status": value})
    assert response.status_code == 200
    assert response.status == "200 OK"
    assert "<script>alert(1)</script>" not in response.get_data(as_text=True)
    assert response.headers["Content-Type"].startswith("text/html")


def test_outbox_keeps_the_chosen_filter(login_as):
    page = login_as("analyst").get("/admin/outbox?status=queued").get_data(as_text=True)
    assert '<option value="queued" selected>' in page


@pytest.mark.parametrize("bad", ["queued", "200 OK\r\nX: y", None, 0, 1000, True])
def test_render_refuses_a_status_that_is_not_an_http_code(app, bad):
    from app.core.web import render

    with app.test_request_context("/admin/outbox"), pytest.raises(TypeError):
        render("errors/error.html", message="x", status=bad)
