"""The index waits for its Chroma server (an init container may start before the Chroma pod is ready)."""

from __future__ import annotations

import socket
import time

import pytest

from melancia.retrieval.index import ChromaUnreachableError, KnowledgeIndex


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_server_fails_after_the_timeout_with_the_url(tmp_path):
    url = f"http://127.0.0.1:{_closed_port()}"
    index = KnowledgeIndex(tmp_path / "index", chroma_url=url)
    started = time.monotonic()
    with pytest.raises(ChromaUnreachableError, match=f"Chroma at {url} did not answer within 1 s"):
        index.wait_for_server(1.0, interval_s=0.2)
    assert 1.0 <= time.monotonic() - started < 10


def test_an_embedded_index_does_not_wait(tmp_path):
    started = time.monotonic()
    KnowledgeIndex(tmp_path / "index").wait_for_server(30.0)
    assert time.monotonic() - started < 1
