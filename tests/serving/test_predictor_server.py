"""The KServe predictor as a real process (kserve.ModelServer) over the packaged model and a real index."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO
from tests.servers import free_port, running, stop

pytestmark = pytest.mark.integration


def write_router_config(path: Path, index_dir: Path) -> Path:
    path.write_text(f"""
providers:
  local: {{kind: llama_cpp, model: "packaged:smollm2", timeout_s: 120, n_ctx: 2048}}
tiers:
  free: {{arms: [{{name: fine-tuned, chain: [local]}}]}}
retrieval: {{enabled: true, k: 2, max_words_per_chunk: 40, index_dir: "{index_dir}"}}
max_tokens: 24
temperature: 0.0
""", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    """One predictor for the module: start-up (model load, index) is paid once."""
    from melancia.retrieval.index import KnowledgeIndex

    root = tmp_path_factory.mktemp("predictor")
    docs = root / "docs"
    docs.mkdir()
    for name in ("acos.md", "roas.md", "cpc.md"):
        shutil.copy(REPO / "data/corpus" / name, docs / name)
    KnowledgeIndex(root / "index").build(docs)
    config = write_router_config(root / "router.yaml", root / "index")
    port = free_port()
    env = {"MELANCIA_HOME": str(root / "home"), "MELANCIA_MODEL_CACHE": str(REPO / ".cache/models"),
           "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "melancia.cli", "serve", "predictor", "--config", str(config), "--port", str(port)]
    with running(command, ready_url=f"http://127.0.0.1:{port}/v1/models/melancia", log=root / "server.log",
                 env=env) as process:
        yield f"http://127.0.0.1:{port}", process, root


def test_v1_predict_answers_with_sources_and_routing(predictor):
    url, _, _ = predictor
    response = httpx.post(f"{url}/v1/models/melancia:predict", timeout=120,
                          json={"instances": [{"question": "O que é ACOS?", "user_id": "u1"}]})
    assert response.status_code == 200, response.text
    [prediction] = response.json()["predictions"]
    assert prediction["answer"].strip() and prediction["provider"] == "local"
    assert prediction["model_name"] == "packaged:smollm2" and prediction["routing_reason"].startswith("tier free")
    assert prediction["sources"] and prediction["sources"][0]["doc_id"] == "acos"
    assert prediction["input_tokens"] > 0 and 0 < prediction["output_tokens"] <= 24


def test_v1_calculation_is_exact_and_bad_input_is_a_clear_400(predictor):
    url, _, _ = predictor
    response = httpx.post(f"{url}/v1/models/melancia:predict", timeout=60,
                          json={"instances": ["gastei R$ 200 e vendi R$ 1.000, qual meu ACOS?"]})
    [prediction] = response.json()["predictions"]
    assert prediction["provider"] == "calculator" and "20,00%" in prediction["answer"]
    assert prediction["calculation"]["value"] == pytest.approx(20.0)
    bad = httpx.post(f"{url}/v1/models/melancia:predict", json={"instances": [{"question": ""}]}, timeout=30)
    assert bad.status_code == 400
    assert "instances[0].question" in bad.json()["error"] and "Traceback" not in bad.text
    # as `curl -d '{...}'` sends it: no JSON content type (the README's example)
    form = httpx.post(f"{url}/v1/models/melancia:predict", timeout=60,
                      headers={"Content-Type": "application/x-www-form-urlencoded"},
                      content='{"instances": ["gastei R$ 200 e vendi R$ 1.000, qual meu ACOS?"]}'.encode())
    assert form.status_code == 200 and "20,00%" in form.json()["predictions"][0]["answer"], form.text
    not_json = httpx.post(f"{url}/v1/models/melancia:predict", content=b"instances=1", timeout=30,
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert not_json.status_code == 400 and "not JSON" in not_json.json()["error"]
    unknown_tier = httpx.post(f"{url}/v1/models/melancia:predict", timeout=30,
                              json={"instances": [{"question": "O que é ROAS?", "tier": "gold"}]})
    assert unknown_tier.status_code == 400 and "unknown tier 'gold'" in unknown_tier.json()["error"]


def test_v2_infer_returns_answer_and_metadata_tensors(predictor):
    import json

    url, _, _ = predictor
    body = {"inputs": [{"name": "question", "shape": [1], "datatype": "BYTES", "data": ["O que é ROAS?"]}]}
    response = httpx.post(f"{url}/v2/models/melancia/infer", json=body, timeout=120)
    assert response.status_code == 200, response.text
    outputs = {o["name"]: o for o in response.json()["outputs"]}
    assert outputs["answer"]["datatype"] == "BYTES" and outputs["answer"]["data"][0].strip()
    metadata = json.loads(outputs["metadata"]["data"][0])
    assert metadata["provider"] == "local" and metadata["sources"][0]["doc_id"] == "roas"


def test_openai_client_chat_completions_streaming_and_not(predictor):
    from openai import OpenAI

    url, _, _ = predictor
    client = OpenAI(base_url=f"{url}/openai/v1", api_key="unused", max_retries=0)
    assert [m.id for m in client.models.list().data] == ["melancia"]
    messages = [{"role": "user", "content": "Qual a diferença entre ACOS e ROAS?"}]
    whole = client.chat.completions.create(model="melancia", messages=messages, max_tokens=16, temperature=0)
    text = whole.choices[0].message.content
    assert text.strip() and whole.usage.completion_tokens <= 16
    assert whole.model_extra["melancia"]["provider"] == "local"
    stream = client.chat.completions.create(model="melancia", messages=messages, max_tokens=16, temperature=0,
                                            stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed.strip() == text.strip()  # greedy: the same answer either way
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    import openai

    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-4", messages=messages, max_tokens=4)


def test_metrics_readiness_and_reload(predictor):
    url, _, _ = predictor
    metrics = httpx.get(f"{url}/metrics", timeout=30).text
    assert 'melancia_predictor_answers_total{arm="fine-tuned",outcome="ok",provider="local"}' in metrics
    assert "melancia_predictor_ready 1.0" in metrics
    assert httpx.get(f"{url}/v2/health/ready", timeout=30).status_code == 200
    reload = httpx.post(f"{url}/v2/repository/models/melancia/load", timeout=180)
    assert reload.status_code == 200, reload.text
    assert "melancia_predictor_reloads_total" in httpx.get(f"{url}/metrics", timeout=30).text
    assert httpx.get(f"{url}/v1/models/melancia", timeout=30).json()["ready"] is True


def test_sigterm_drains_and_exits_cleanly(predictor):
    _, process, _ = predictor
    assert stop(process) == 0


def test_not_ready_predictor_exits_with_the_reason(tmp_path):
    import subprocess

    config = tmp_path / "router.yaml"
    config.write_text("providers:\n  local: {kind: llama_cpp, model: models:/melancia-assistant@champion}\n"
                      "tiers:\n  free: {arms: [{name: a, chain: [local]}]}\nretrieval: {enabled: false}\n")
    result = subprocess.run([sys.executable, "-m", "melancia.cli", "serve", "predictor", "--config", str(config),
                             "--port", str(free_port())], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "predictor not ready: tier free: no provider loaded" in result.stderr
    assert "no alias 'champion'" in result.stderr and "Traceback" not in result.stderr
