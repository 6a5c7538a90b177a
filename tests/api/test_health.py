def test_health_reports_database_and_redis(client):
    response = client.get("/api/v1/health")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok" and body["database"] == "ok" and body["redis"] == "not_configured"
    assert body["version"]


def test_unknown_api_route_is_a_stripe_style_404(client):
    body = client.get("/api/v1/nope").get_json()
    assert body["error"]["type"] == "invalid_request_error" and body["request_id"].startswith("req_")
