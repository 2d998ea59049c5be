"""Every endpoint of the gateway through a real uvicorn server on localhost."""

from __future__ import annotations

import json
import threading

import httpx
import pytest

from tests.api.harness import api_settings, live_api


@pytest.fixture
def api():
    with live_api() as live:
        yield live


def headers(api, name: str) -> dict[str, str]:
    return {"X-API-Key": api.keys[name]}


def ask(api, name: str = "free-user", **body):
    return httpx.post(f"{api.url}/api/v1/query", json={"question": "O que é ACOS?", **body},
                      headers=headers(api, name), timeout=30)


def test_public_endpoints_need_no_key(api):
    health = httpx.get(f"{api.url}/health").json()
    assert health["status"] == "healthy" and health["uptime_seconds"] >= 0
    assert httpx.get(f"{api.url}/ready").json() == {"ready": True, "reason": "ready"}
    assert httpx.get(f"{api.url}/metrics").headers["content-type"].startswith("text/plain")
    assert httpx.get(f"{api.url}/").json()["message"] == "MelancIA API"
    page = httpx.get(f"{api.url}/", headers={"Accept": "text/html"})
    assert page.headers["content-type"].startswith("text/html") and "/api/v1/query/stream" in page.text


def test_keys_are_required_and_checked(api):
    missing = httpx.post(f"{api.url}/api/v1/query", json={"question": "O que é ACOS?"})
    assert missing.status_code == 401 and missing.json()["error"]["type"] == "unauthorized"
    assert "X-API-Key" in missing.json()["error"]["message"]
    wrong = httpx.post(f"{api.url}/api/v1/query", json={"question": "O que é ACOS?"},
                       headers={"X-API-Key": api.keys["free-user"][:-3] + "abc"})
    assert wrong.status_code == 401
    bearer = httpx.post(f"{api.url}/api/v1/query", json={"question": "O que é ACOS?"},
                        headers={"Authorization": f"Bearer {api.keys['free-user']}"})
    assert bearer.status_code == 200
    api.app.state.services.store.revoke_key("free-user")
    assert ask(api).status_code == 401


def test_query_answers_with_the_plan_fields_and_is_stored(api):
    response = ask(api, user_id=123)
    assert response.status_code == 200, response.text
    body = response.json()
    for field in ("answer", "provider", "model_name", "latency_seconds", "routing_reason", "estimated_cost",
                  "success", "timestamp", "query_id", "sources"):
        assert field in body
    assert body["provider"] == "local" and body["answer"] == "[local] Resposta: O que é ACOS?"
    assert body["sources"][0]["doc_id"] == "acos" and body["success"] is True and body["tier"] == "free"
    stored = httpx.get(f"{api.url}/api/v1/query/{body['query_id']}", headers=headers(api, "free-user")).json()
    assert stored["answer"] == body["answer"] and stored["query_id"] == body["query_id"]
    assert httpx.get(f"{api.url}/api/v1/query/{body['query_id']}", headers=headers(api, "premium-user")).status_code == 404
    assert httpx.get(f"{api.url}/api/v1/query/{body['query_id']}", headers=headers(api, "admin")).status_code == 200
    assert httpx.get(f"{api.url}/api/v1/query/nope", headers=headers(api, "free-user")).status_code == 404


def test_tier_comes_from_the_key(api):
    refused = ask(api, "free-user", user_tier="premium")
    assert refused.status_code == 403 and "above this key's tier 'free'" in refused.json()["error"]["message"]
    premium = ask(api, "premium-user").json()
    assert premium["tier"] == "premium" and premium["provider"] == "strong" and premium["estimated_cost"] > 0
    downgraded = ask(api, "premium-user", user_tier="free", question="O que é ROAS?").json()
    assert downgraded["tier"] == "free" and downgraded["provider"] == "local"
    assert ask(api, "premium-user", user_tier="gold").status_code == 403


@pytest.mark.parametrize("body, field", [({"question": "oi"}, "question"), ({"max_tokens": 10}, "max_tokens"),
                                         ({"temperature": 1.5}, "temperature"), ({"user_tier": "PREMIUM!"}, "user_tier")])
def test_validation_errors_name_the_field(api, body, field):
    response = ask(api, **body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["type"] == "validation_error" and error["message"].startswith(field)


def test_oversized_body_is_refused(api):
    response = httpx.post(f"{api.url}/api/v1/query", content=b"{" + b" " * 70_000 + b"}",
                          headers={**headers(api, "free-user"), "Content-Type": "application/json"})
    assert response.status_code == 413 and response.json()["error"]["type"] == "payload_too_large"

    def chunks():
        yield b'{"question": "'
        for _ in range(100):
            yield b"a" * 1000
        yield b'"}'

    chunked = httpx.post(f"{api.url}/api/v1/query", content=chunks(),
                         headers={**headers(api, "free-user"), "Content-Type": "application/json"})
    assert chunked.status_code == 413 and "over 65536 bytes" in chunked.json()["error"]["message"]


def test_calculation_questions_are_exact(api):
    body = ask(api, question="gastei R$ 200 e vendi R$ 1.000, qual meu ACOS?").json()
    assert body["provider"] == "calculator" and "20,00%" in body["answer"]
    assert body["calculation"]["metric"] == "acos"


def test_cache_hits_skip_the_provider_and_admin_clears_it(api):
    first = ask(api, question="Como funciona o leilão de anúncios?").json()
    calls = len(api.provider("local").calls)
    second = ask(api, question="como funciona o leilão de anúncios").json()
    assert second["cached"] is True and first["cached"] is False
    assert second["answer"] == first["answer"] and len(api.provider("local").calls) == calls
    assert second["query_id"] != first["query_id"]
    metrics = httpx.get(f"{api.url}/metrics").text
    assert 'melancia_api_cache_total{result="hit"} 1.0' in metrics
    assert httpx.post(f"{api.url}/api/v1/cache/clear", headers=headers(api, "free-user")).status_code == 403
    cleared = httpx.post(f"{api.url}/api/v1/cache/clear", headers=headers(api, "admin")).json()
    assert cleared["removed"] >= 1
    assert ask(api, question="Como funciona o leilão de anúncios?").json()["cached"] is False


def test_rate_limit_answers_429_with_retry_after(api):
    for _ in range(2):
        assert ask(api, "trial-user").status_code == 200
    limited = ask(api, "trial-user")
    assert limited.status_code == 429 and 1 <= int(limited.headers["Retry-After"]) <= 60
    assert "requests per minute" in limited.json()["error"]["message"]
    assert ask(api, "free-user").status_code == 200  # other keys are not affected
    assert 'melancia_api_rate_limited_total{limit="requests per minute",tier="trial"} 1.0' in \
        httpx.get(f"{api.url}/metrics").text


def sse_events(text: str) -> list[tuple[str, dict]]:
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_stream_sends_sources_tokens_then_the_record(api):
    with httpx.stream("POST", f"{api.url}/api/v1/query/stream", json={"question": "O que é TACOS?"},
                      headers=headers(api, "free-user"), timeout=30) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response.read().decode())
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "sources" and kinds[-1] == "done" and kinds.count("token") > 3
    done = events[-1][1]
    assert "".join(data["text"] for kind, data in events if kind == "token") == done["answer"]
    assert done["provider"] == "local" and done["query_id"]
    unauthorized = httpx.post(f"{api.url}/api/v1/query/stream", json={"question": "O que é TACOS?"})
    assert unauthorized.status_code == 401


def test_openai_client_works_unchanged(api):
    import openai

    client = openai.OpenAI(base_url=f"{api.url}/v1", api_key=api.keys["premium-user"], max_retries=0)
    assert [m.id for m in client.models.list().data] == ["melancia"]
    messages = [{"role": "system", "content": "seja breve"}, {"role": "user", "content": "O que é CPC?"}]
    whole = client.chat.completions.create(model="melancia", messages=messages)
    assert whole.choices[0].message.content == "[strong] Resposta: O que é CPC?"
    assert whole.model_extra["melancia"]["tier"] == "premium" and whole.usage.total_tokens > 0
    chunks = list(client.chat.completions.create(model="melancia", messages=messages, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == whole.choices[0].message.content
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{api.url}/v1", api_key="mk_nope", max_retries=0).models.list()
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-4o", messages=messages)


def test_no_provider_is_503_without_a_trace(api):
    api.provider("local").fail_always()
    response = ask(api, question="Qual a melhor estratégia de lances?")
    assert response.status_code == 503 and response.headers["Retry-After"] == "30"
    assert "no provider could answer" in response.json()["error"]["message"]
    assert "Traceback" not in response.text
    assert 'melancia_api_provider_errors_total{tier="free"} 1.0' in httpx.get(f"{api.url}/metrics").text


def test_models_and_stats(api):
    ask(api)
    models = httpx.get(f"{api.url}/api/v1/models", headers=headers(api, "free-user")).json()
    assert {(m["provider"], m["name"], m["status"]) for m in models} == {
        ("local", "melancia-tuned", "available"), ("strong", "strong-model", "available")}
    stats = httpx.get(f"{api.url}/api/v1/models/stats", headers=headers(api, "free-user")).json()
    assert stats["providers"]["local"]["requests"] >= 1
    assert httpx.get(f"{api.url}/api/v1/stats", headers=headers(api, "free-user")).status_code == 403
    admin_stats = httpx.get(f"{api.url}/api/v1/stats", headers=headers(api, "admin")).json()
    assert admin_stats["uptime_seconds"] > 0 and admin_stats["queries_logged"] >= 1
    assert {k["name"] for k in admin_stats["keys"]} >= {"free-user", "admin"}
    assert all("hash" not in json.dumps(k) for k in admin_stats["keys"])


def test_metrics_count_routes_statuses_and_tokens(api):
    ask(api)
    ask(api, question="oi")
    metrics = httpx.get(f"{api.url}/metrics").text
    assert 'melancia_api_requests_total{method="POST",route="/api/v1/query",status="200"} 1.0' in metrics
    assert 'melancia_api_requests_total{method="POST",route="/api/v1/query",status="422"} 1.0' in metrics
    assert 'melancia_api_tokens_total{direction="output",provider="local"}' in metrics
    assert "melancia_api_request_seconds_bucket" in metrics and "melancia_api_in_flight_requests" in metrics


def test_draining_finishes_in_flight_requests_and_reports_not_ready(api):
    api.provider("local").delay_s = 1.5
    result = {}
    worker = threading.Thread(target=lambda: result.update(response=ask(api, question="Pergunta demorada?")))
    worker.start()
    import time

    time.sleep(0.5)
    api.server.handle_exit(15, None)  # what SIGTERM does
    transport = httpx.ASGITransport(app=api.app)

    async def probe():
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            return await client.get("/ready")

    import asyncio

    ready = asyncio.run(probe())
    assert ready.status_code == 503 and ready.json()["reason"].startswith("draining")
    worker.join(10)
    assert result["response"].status_code == 200


def test_cors_only_for_configured_origins():
    with live_api(api_settings(cors_origins=["https://painel.example"])) as api:
        allowed = httpx.options(f"{api.url}/api/v1/query", headers={
            "Origin": "https://painel.example", "Access-Control-Request-Method": "POST"})
        assert allowed.headers["access-control-allow-origin"] == "https://painel.example"
        other = httpx.options(f"{api.url}/api/v1/query", headers={
            "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-origin" not in other.headers
    with pytest.raises(ValueError, match="cannot be combined with cors_allow_credentials"):
        api_settings(cors_origins=["*"], cors_allow_credentials=True)
