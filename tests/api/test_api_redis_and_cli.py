"""Limits and cache shared by two API replicas through a real Redis; the keys and ask commands."""

from __future__ import annotations

import json

import httpx
import pytest
from typer.testing import CliRunner

from melancia.api.cache import cache_from_url
from melancia.api.limits import limiter_from_url
from melancia.api.store import Store
from melancia.cli import app
from tests.api.harness import create_keys, live_api


@pytest.mark.integration
def test_two_replicas_share_limits_and_cache_through_redis(redis_url, redis_client):
    store = Store()
    keys = create_keys(store)
    with live_api(limiter=limiter_from_url(redis_url), cache=cache_from_url(redis_url), store=store,
                  keys=keys) as one, live_api(limiter=limiter_from_url(redis_url), cache=cache_from_url(redis_url),
                                              store=store, keys=keys) as two:
        trial = {"X-API-Key": keys["trial-user"]}
        body = {"question": "O que é ROAS?"}
        assert httpx.post(f"{one.url}/api/v1/query", json=body, headers=trial).json()["cached"] is False
        second = httpx.post(f"{two.url}/api/v1/query", json=body, headers=trial)
        assert second.json()["cached"] is True  # answered from the cache the other replica filled
        assert two.provider("local").calls == []
        third = httpx.post(f"{one.url}/api/v1/query", json=body, headers=trial)
        assert third.status_code == 429 and int(third.headers["Retry-After"]) >= 1  # 2 a minute across replicas
        admin = {"X-API-Key": keys["admin"]}
        assert httpx.post(f"{two.url}/api/v1/cache/clear", headers=admin).json()["removed"] == 1
        assert not [k for k in redis_client.scan_iter("melancia:cache:*")]


def test_keys_commands_create_list_and_revoke():
    runner = CliRunner()
    created = runner.invoke(app, ["keys", "create", "analista", "--tier", "premium"])
    assert created.exit_code == 0, created.output
    plaintext = created.stdout.strip().splitlines()[-1]
    assert plaintext.startswith("mk_") and Store().authenticate(plaintext).tier == "premium"
    listed = json.loads(runner.invoke(app, ["keys", "list", "--json"]).stdout)
    assert [(k["name"], k["tier"], k["scopes"]) for k in listed] == [("analista", "premium", ["user"])]
    assert plaintext not in json.dumps(listed)
    duplicate = runner.invoke(app, ["keys", "create", "analista"])
    assert duplicate.exit_code == 2 and "analista" in duplicate.output
    assert runner.invoke(app, ["keys", "revoke", "analista"]).exit_code == 0
    assert Store().authenticate(plaintext) is None
    assert runner.invoke(app, ["keys", "create", "x", "--scope", "root"]).exit_code == 2


def test_ask_prints_the_exact_calculation_and_routing(tmp_path):
    config = tmp_path / "router.yaml"
    config.write_text("providers:\n  local: {kind: fake, model: m}\ntiers:\n  free: {arms: [{name: a, chain: [local]}]}\n"
                      "retrieval: {enabled: false}\n")
    result = CliRunner().invoke(app, ["ask", "gastei R$ 200 e vendi R$ 1.000, qual meu ACOS?", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "20,00%" in result.stdout and "calculator" in result.output
    answer = CliRunner().invoke(app, ["ask", "O que é ACOS?", "--config", str(config), "--json"])
    assert json.loads(answer.stdout)["answer"] == "Resposta: O que é ACOS?"
    streamed = CliRunner().invoke(app, ["ask", "O que é ROAS?", "--config", str(config)])
    assert streamed.stdout.startswith("Resposta: O que é ROAS?") and "tier free -> local" in streamed.output
