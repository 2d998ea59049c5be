"""Load benchmark of the API gateway on localhost: cached answers, and the latency the gateway adds.

The server runs in a child process (this file with ``--serve``) over a router whose provider is
scripted to take ``--provider-ms`` per answer, so the numbers measure the gateway (auth, limits,
cache, logging, metrics, JSON), not a model. In one command it measures:

1. the provider called directly through the router, in process (the reference);
2. uncached queries through HTTP, one at a time: the gateway's added latency = (2) - (1);
3. cached queries through HTTP with ``--concurrency`` clients: requests/s and p50/p99.

    .venv/bin/python bench/api_load.py [--requests 2000] [--concurrency 16] [--provider-ms 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def router(provider_ms: float):
    from melancia.config import from_dict
    from melancia.providers.fake import FakeProvider
    from melancia.router.breaker import CircuitBreaker
    from melancia.router.config import RouterConfig
    from melancia.router.router import ProviderSlot, Router

    config = from_dict(RouterConfig, {"providers": {"local": {"kind": "fake", "model": "scripted"}},
                                      "tiers": {"free": {"arms": [{"name": "a", "chain": ["local"]}]}},
                                      "retrieval": {"enabled": False}})
    provider = FakeProvider("local", "scripted", reply="Resposta curta para {question}", delay_s=provider_ms / 1000)
    return Router(config, {"local": ProviderSlot("local", config.providers["local"], provider, CircuitBreaker())})


def serve(port: int, provider_ms: float) -> None:
    import logging

    from melancia.api.app import create_app
    from melancia.api.backend import InProcessBackend
    from melancia.api.config import APISettings, TierLimits
    from melancia.api.server import serve_api

    logging.getLogger("melancia.api").setLevel(logging.WARNING)
    settings = APISettings(rate_limits={"free": TierLimits(requests_per_minute=10**9, tokens_per_minute=10**12)})
    serve_api(create_app(settings, backend=InProcessBackend(router(provider_ms))), port=port)


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return ordered[len(ordered) // 2], ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def direct_latencies(count: int, provider_ms: float) -> list[float]:
    from melancia.router.router import Query

    direct = router(provider_ms)
    out = []
    for i in range(count):
        started = time.perf_counter()
        direct.answer(Query(f"pergunta direta número {i}?"))
        out.append(time.perf_counter() - started)
    return out


async def http_latencies(url: str, key: str, questions: list[str], concurrency: int) -> tuple[list[float], float]:
    import httpx

    latencies: list[float] = []
    queue: asyncio.Queue[str] = asyncio.Queue()
    for question in questions:
        queue.put_nowait(question)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            question = queue.get_nowait()
            started = time.perf_counter()
            response = await client.post("/api/v1/query", json={"question": question}, headers={"X-API-Key": key})
            latencies.append(time.perf_counter() - started)
            response.raise_for_status()

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        return latencies, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--provider-ms", type=float, default=20.0)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.provider_ms)
        return
    run(args)


def run(args: argparse.Namespace) -> None:
    import httpx

    from melancia.api.store import Store
    from tests.servers import free_port

    home = tempfile.mkdtemp(prefix="melancia-bench-")
    env = {**os.environ, "MELANCIA_HOME": home}
    os.environ["MELANCIA_HOME"] = home
    key = Store().create_key("bench", "free")[1]
    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port), "--provider-ms", str(args.provider_ms)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
            if time.monotonic() > deadline:
                raise SystemExit("the API did not start")
        sequential = min(200, args.requests)
        direct = direct_latencies(sequential, args.provider_ms)
        uncached, _ = asyncio.run(http_latencies(url, key, [f"pergunta nova {i}?" for i in range(sequential)], 1))
        asyncio.run(http_latencies(url, key, ["O que é ACOS?"], 1))  # fill the cache
        cached, seconds = asyncio.run(http_latencies(url, key, ["O que é ACOS?"] * args.requests, args.concurrency))
    finally:
        server.terminate()
        server.wait(30)
    report(args, direct, uncached, cached, seconds)


def report(args: argparse.Namespace, direct: list[float], uncached: list[float], cached: list[float],
           seconds: float) -> None:
    d50, d99 = percentiles(direct)
    u50, u99 = percentiles(uncached)
    c50, c99 = percentiles(cached)
    print(f"provider scripted at {args.provider_ms:g} ms; {os.cpu_count()} CPUs; localhost")
    print(f"direct router call      p50 {d50 * 1000:7.2f} ms  p99 {d99 * 1000:7.2f} ms  (reference, n={len(direct)})")
    print(f"API, cache miss, 1 conn p50 {u50 * 1000:7.2f} ms  p99 {u99 * 1000:7.2f} ms  (n={len(uncached)})")
    print(f"  gateway adds          p50 {(u50 - d50) * 1000:7.2f} ms  ({u50 / d50:.2f}x the direct call)")
    print(f"API, cache hit, {args.concurrency:2d} conns p50 {c50 * 1000:7.2f} ms  p99 {c99 * 1000:7.2f} ms  "
          f"{len(cached) / seconds:7.1f} requests/s (n={len(cached)})")
    print(f"  cache hit vs miss     p50 {u50 / c50:.2f}x faster; mean miss {statistics.mean(uncached) * 1000:.2f} ms")


if __name__ == "__main__":
    main()
