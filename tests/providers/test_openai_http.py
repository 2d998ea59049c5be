"""The OpenAI-compatible provider through the real ``openai`` SDK against a local HTTP server."""

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from melancia.providers import ProviderError
from melancia.providers.openai_http import OpenAICompatibleProvider


class Handler(BaseHTTPRequestHandler):
    seen: list = []
    status = 200

    def log_message(self, *args):
        pass

    def do_GET(self):
        self._json({"object": "list", "data": [{"id": "tiny", "object": "model", "created": 0, "owned_by": "t"}]})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Handler.seen.append((self.headers.get("Authorization"), body))
        if Handler.status != 200:
            self._json({"error": {"message": "boom"}}, Handler.status)
            return
        text = "ACOS é 20%"
        if body.get("stream"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for piece in ("ACOS ", "é ", "20%"):
                chunk = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "tiny",
                         "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")
            return
        self._json({"id": "c", "object": "chat.completion", "created": 0, "model": "tiny",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}})

    def _json(self, payload, status=200):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def server():
    Handler.seen, Handler.status = [], 200
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()


def test_chat_stream_usage_and_key_from_environment(server, monkeypatch):
    monkeypatch.setenv("TEACHER_KEY", "sk-secret")
    provider = OpenAICompatibleProvider(base_url=server, model="tiny", api_key_env="TEACHER_KEY", max_retries=0)
    done = provider.chat([{"role": "user", "content": "O que é ACOS?"}], max_tokens=20, seed=3)
    assert (done.text, done.input_tokens, done.output_tokens, done.finish_reason) == ("ACOS é 20%", 7, 3, "stop")
    auth, body = Handler.seen[-1]
    assert auth == "Bearer sk-secret" and body["seed"] == 3 and body["max_tokens"] == 20
    assert "".join(provider.stream([{"role": "user", "content": "x"}])) == "ACOS é 20%"
    assert provider.health() is True
    assert "sk-secret" not in repr(provider)


def test_server_error_becomes_provider_error(server):
    Handler.status = 500
    provider = OpenAICompatibleProvider(base_url=server, model="tiny", max_retries=1)
    with pytest.raises(ProviderError, match="HTTP 500"):
        provider.chat([{"role": "user", "content": "x"}])
    assert len(Handler.seen) == 2  # one retry


def test_unreachable_server():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    provider = OpenAICompatibleProvider(base_url=f"http://127.0.0.1:{port}/v1", model="m", max_retries=0, timeout_s=2)
    with pytest.raises(ProviderError, match="cannot connect"):
        provider.chat([{"role": "user", "content": "x"}])
    assert provider.health() is False
