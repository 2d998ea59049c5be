"""The optional LLM judge against a real HTTP endpoint, and the transformers path for BASE+ADAPTER models."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from melancia.evaluation.config import EvalConfig, JudgeConfig
from melancia.evaluation.models import TransformersModel, open_model
from melancia.evaluation.runner import JUDGE_PROMPT, _judge
from melancia.training.config import ExportConfig
from melancia.training.trainer import train
from tests.training.conftest import save_tiny_llama, tiny_train_config, write_splits


class JudgeHandler(BaseHTTPRequestHandler):
    prompts: list = []
    reply = "NOTA: 4"

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        JudgeHandler.prompts.append(body["messages"][0]["content"])
        data = json.dumps({"id": "j", "object": "chat.completion", "created": 0, "model": "judge",
                           "choices": [{"index": 0, "finish_reason": "stop",
                                        "message": {"role": "assistant", "content": JudgeHandler.reply}}],
                           "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def judge_url():
    JudgeHandler.prompts = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), JudgeHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()


def test_judge_scores_with_the_versioned_prompt(judge_url):
    score = _judge(EvalConfig(judge=JudgeConfig(base_url=judge_url, model="judge", api_key_env="NO_SUCH_KEY")))
    row = {"question": "O que é ACOS?", "reference": "ACOS = investimento / receita.", "answer": "ACOS é 20%."}
    assert score(row) == 4.0
    prompt = JudgeHandler.prompts[-1]
    assert "O que é ACOS?" in prompt and "ACOS = investimento / receita." in prompt and "ACOS é 20%." in prompt
    assert prompt.startswith(JUDGE_PROMPT.read_text(encoding="utf-8").split("\n")[0])
    JudgeHandler.reply = "não sei"
    assert score(row) is None  # an unparseable verdict is missing, not a guess
    JudgeHandler.reply = "NOTA: 4"
    assert _judge(EvalConfig()) is None


def test_base_plus_adapter_runs_through_transformers_and_samples_by_seed(tiny_tokenizer, tmp_path):
    base = save_tiny_llama(tiny_tokenizer, tmp_path / "base")
    splits = write_splits(tmp_path / "splits", train=16, valid=4)
    train(tiny_train_config(base, splits, tmp_path / "run", max_steps=2, eval_every=2,
                            export=ExportConfig(merged=False, gguf=False)))
    model = open_model(f"{base}+{tmp_path / 'run/adapter'}")
    assert isinstance(model, TransformersModel) and model.ref.endswith("run/adapter")
    messages = [{"role": "user", "content": "O que é ACOS?"}]
    first = model.generate(messages, max_tokens=8, temperature=1.0, seed=3)
    assert model.generate(messages, max_tokens=8, temperature=1.0, seed=3).text == first.text
    assert first.output_tokens <= 8 and first.seconds > 0
    logprobs = model.reference_logprobs(messages, "ACOS é investimento dividido pela receita.")
    assert logprobs and all(lp <= 0 for lp in logprobs)
    # the run folder without a GGUF opens as base + adapter too
    assert open_model(str(tmp_path / "run")).ref == model.ref
