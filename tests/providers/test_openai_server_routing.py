"""The OpenAI-compatible provider against a real llama.cpp server, routed with a fallback behind it."""

from __future__ import annotations

import sys

import pytest

from melancia.config import from_dict
from melancia.router.config import RouterConfig
from melancia.router.loading import build_router
from melancia.router.router import Query
from tests.servers import free_port, running

pytestmark = pytest.mark.integration


@pytest.fixture
def llama_server(tmp_path):
    from melancia.models.loading import resolve

    gguf = resolve("packaged:smollm2").gguf_path
    port = free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", "smollm2",
               "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "1024"]
    with running(command, ready_url=f"http://127.0.0.1:{port}/v1/models", log=tmp_path / "llama-server.log") as process:
        yield f"http://127.0.0.1:{port}/v1", process


def test_routes_through_a_real_server_and_falls_back_when_it_dies(llama_server):
    base_url, process = llama_server
    config = from_dict(RouterConfig, {
        "providers": {"remote": {"kind": "openai", "base_url": base_url, "model": "smollm2", "timeout_s": 60,
                                 "max_retries": 0, "price_input_per_million": 1.0, "price_output_per_million": 1.0},
                      "backup": {"kind": "fake", "model": "backup-model", "reply": "reserva: {question}"}},
        "tiers": {"free": {"arms": [{"name": "main", "chain": ["remote", "backup"]}]}},
        "retrieval": {"enabled": False}, "calculator": False, "max_tokens": 16, "temperature": 0.0})
    router = build_router(config)
    assert router.slots["remote"].provider.health()

    whole = router.answer(Query("O que é ACOS?"))
    assert whole.provider == "remote" and whole.text and whole.fallbacks == []
    assert whole.output_tokens <= 16 and whole.estimated_cost == pytest.approx((whole.input_tokens + whole.output_tokens) / 1e6)

    events = list(router.stream(Query("O que é ACOS?")))
    streamed = "".join(e.data for e in events if e.kind == "token")
    assert events[-1].kind == "done" and events[-1].data.provider == "remote"
    assert streamed.strip() == whole.text  # greedy: streaming and not give the same text

    process.kill()
    process.wait()
    after = router.answer(Query("O que é ROAS?"))
    assert after.provider == "backup" and after.text == "reserva: O que é ROAS?"
    assert after.fallbacks[0]["provider"] == "remote" and "cannot connect" in after.fallbacks[0]["reason"]
    streamed_after = list(router.stream(Query("O que é CPC?")))
    assert streamed_after[-1].kind == "done" and streamed_after[-1].data.provider == "backup"
    assert not router.slots["remote"].provider.health()
    assert router.stats.snapshot()["providers"]["remote"]["errors"] == 2
