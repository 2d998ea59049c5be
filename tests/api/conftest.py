"""A real redis-server for the Redis-backed rate limiter and cache, started once per test session."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import free_port, stop


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``redis://127.0.0.1:PORT/0`` of a throwaway server (no persistence), stopped after the session."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not on PATH: install Debian's redis-server (apt-get install redis-server)")
    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    log = folder / "redis.log"
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
               "--dir", str(folder)]
    with log.open("w") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        _wait_for_ping(process, url, log, timeout_s=20.0)
        yield url
    finally:
        stop(process)


def _wait_for_ping(process: subprocess.Popen, url: str, log: Path, timeout_s: float) -> None:
    import redis

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"redis-server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1) as client:
                if client.ping():
                    return
        except redis.RedisError:
            time.sleep(0.1)
    pytest.fail(f"redis-server at {url} did not answer PING within {timeout_s} s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def redis_client(redis_url: str) -> Iterator:
    """A client on the session's server, emptied before each test (the server is ours alone)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()
