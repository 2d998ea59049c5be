"""The KServe custom predictor: a ``kserve.Model`` that wraps the router, served by ``kserve.ModelServer``.

On a cluster it runs as an InferenceService with a custom container (``melancia serve predictor``);
locally the same command serves on http://127.0.0.1:8080. It answers:

* KServe v1: ``POST /v1/models/melancia:predict`` with ``{"instances": ["pergunta", ...]}`` or objects
  ``{"question", "user_id", "tier", "max_tokens", "temperature"}``; ``{"predictions": [answer, ...]}``.
* KServe v2: ``POST /v2/models/melancia/infer`` with a BYTES input ``question`` (optional BYTES inputs
  ``user_id`` and ``tier``); BYTES outputs ``answer`` and ``metadata`` (JSON of the routing record).
* OpenAI chat completions, streaming or not, at ``/openai/v1/chat/completions`` and
  ``/openai/v1/models`` (see :mod:`melancia.serving.routes`).
* Readiness (``/v1/models/melancia``, ``/v2/health/ready``) only once the models and the index are
  loaded; ``POST /v2/repository/models/melancia/load`` reloads (e.g. after a promotion), and with
  ``reload_interval_s`` the champion alias is polled and a new version loaded when it moves.
* Its metrics, next to KServe's, on ``/metrics``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

# kserve parses sys.argv with its own argparse parser when first imported, and argparse abbreviations make
# our options collide with its own (--config reads as --configure_logging): import it with the program name.
_argv, sys.argv = sys.argv, sys.argv[:1]
try:
    from kserve import InferOutput, InferRequest, InferResponse, Model
    from kserve.errors import InvalidInput, ModelNotReady
    from kserve.model_repository import ModelRepository
finally:
    sys.argv = _argv

from starlette.concurrency import iterate_in_threadpool

from melancia.providers.references import REGISTRY_REF
from melancia.router.config import RouterConfig, load_router_config
from melancia.router.loading import build_router
from melancia.router.router import Answer, NoProviderAvailable, Query, Router, StreamEvent
from melancia.serving import metrics
from melancia.tracking import tracking_uri

MODEL_NAME = "melancia"
MAX_QUESTION_CHARS = 2000
log = logging.getLogger("melancia.predictor")


class MelanciaPredictor(Model):
    """The router behind KServe's protocols; ``router`` is swapped atomically on reload."""

    def __init__(self, config_path: Path | str, overrides: list[str] | None = None, *, name: str = MODEL_NAME,
                 router: Router | None = None) -> None:
        super().__init__(name)
        self.config_path, self.overrides = Path(config_path), list(overrides or [])
        self.router: Router | None = router
        self.not_ready_reason = "not loaded yet"
        self.ready = False
        self._reload_lock = threading.Lock()
        self._stop_polling = threading.Event()
        self._fingerprint: tuple[tuple[str, str], ...] = ()

    # ------------------------------------------------------------------ lifecycle

    def config(self) -> RouterConfig:
        return load_router_config(self.config_path, self.overrides)

    def load(self) -> bool:
        """Build the router (models loaded, index opened); ready only when it says so."""
        with self._reload_lock:
            config = self.config()
            fingerprint = registry_fingerprint(config)
            router = build_router(config)
            ready, reason = router.ready()
            if not ready and self.router is not None:
                router.close()
                metrics.RELOADS.labels("refused").inc()
                log.warning("reload refused, keeping the loaded router: %s", reason)
                return self.ready
            previous, self.router = self.router, router
            self._fingerprint = fingerprint
            self.ready, self.not_ready_reason = ready, reason
            metrics.READY.set(int(ready))
            if previous is not None:
                previous.close()
                metrics.RELOADS.labels("ok").inc()
            log.info("router loaded: %s", ", ".join(f"{s['name']}={s['model'] if s['available'] else s['reason']}"
                                                    for s in router.provider_status()))
            return self.ready

    def start(self) -> None:  # KServe calls this at start-up; readiness stays what load() found
        pass

    def stop(self) -> None:
        self._stop_polling.set()
        self.ready = False
        metrics.READY.set(0)

    def poll_registry(self, interval_s: float) -> threading.Thread:
        """Reload whenever the registry versions behind ``models:/…@alias`` references change."""
        def loop() -> None:
            while not self._stop_polling.wait(interval_s):
                try:
                    if registry_fingerprint(self.config()) != self._fingerprint:
                        log.info("registry alias moved: reloading")
                        self.load()
                except Exception as exc:  # noqa: BLE001 - a failed poll is retried at the next interval
                    log.warning("registry poll failed: %s", exc)

        thread = threading.Thread(target=loop, name="registry-poll", daemon=True)
        thread.start()
        return thread

    # ------------------------------------------------------------------ inference

    def answer(self, query: Query) -> Answer:
        router = self._router()
        self._check_tier(router, query)
        try:
            answer = router.answer(query)
        except NoProviderAvailable:
            metrics.UNANSWERED.inc()
            raise
        metrics.observe(answer)
        return answer

    async def stream(self, query: Query) -> AsyncIterator[StreamEvent]:
        """The router's stream events, produced in a worker thread."""
        router = self._router()
        self._check_tier(router, query)
        async for event in iterate_in_threadpool(router.stream(query)):
            if event.kind == "done":
                metrics.observe(event.data)
            elif event.kind == "error":
                metrics.UNANSWERED.inc()
            yield event

    def _router(self) -> Router:
        if self.router is None or not self.ready:
            raise ModelNotReady(self.name, self.not_ready_reason)
        return self.router

    @staticmethod
    def _check_tier(router: Router, query: Query) -> None:
        if query.tier is not None and query.tier not in router.config.tiers:
            raise InvalidInput(f"unknown tier {query.tier!r}; expected one of {sorted(router.config.tiers)}")

    async def predict(self, payload: dict[str, Any] | InferRequest, headers: dict[str, str] | None = None,
                      response_headers: dict[str, str] | None = None) -> dict[str, Any] | InferResponse:
        if isinstance(payload, InferRequest):
            queries = v2_queries(payload)
            answers = await asyncio.gather(*(asyncio.to_thread(self.answer, q) for q in queries))
            return v2_response(payload, self.name, answers)
        queries = v1_queries(payload)  # NoProviderAvailable is answered 503 by the server's handler
        answers = [await asyncio.to_thread(self.answer, q) for q in queries]
        return {"predictions": [a.as_dict() for a in answers]}


class MelanciaRepository(ModelRepository):
    """KServe's repository API (``/v2/repository/models/{name}/load``) reloads the router in place."""

    async def load(self, name: str) -> bool:
        model = self.get_model(name)
        if not isinstance(model, MelanciaPredictor):
            raise InvalidInput(f"unknown model {name!r}")
        return await asyncio.to_thread(model.load)


# ---------------------------------------------------------------------- protocol conversions


def v1_queries(payload: Any) -> list[Query]:
    if isinstance(payload, bytes | str):
        # KServe hands the body over undecoded unless it was sent as application/json; `curl -d '{...}'`
        # says application/x-www-form-urlencoded, and the protocol's own examples send no header at all.
        try:
            payload = json.loads(payload)
        except ValueError:
            raise InvalidInput("the body is not JSON: expected {\"instances\": [...]}") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("instances"), list) or not payload["instances"]:
        raise InvalidInput('expected {"instances": [question or {"question": ...}, ...]} with at least one instance')
    return [_query(item, f"instances[{i}]") for i, item in enumerate(payload["instances"])]


def _query(item: Any, where: str) -> Query:
    if isinstance(item, str):
        item = {"question": item}
    if not isinstance(item, dict):
        raise InvalidInput(f"{where}: expected a string or an object with 'question'")
    question = item.get("question")
    if not isinstance(question, str) or not 1 <= len(question.strip()) <= MAX_QUESTION_CHARS:
        raise InvalidInput(f"{where}.question: expected a string of 1 to {MAX_QUESTION_CHARS} characters")
    unknown = set(item) - {"question", "user_id", "tier", "user_tier", "max_tokens", "temperature"}
    if unknown:
        raise InvalidInput(f"{where}: unknown field(s) {sorted(unknown)}")
    max_tokens, temperature = item.get("max_tokens"), item.get("temperature")
    if max_tokens is not None and (not isinstance(max_tokens, int) or not 1 <= max_tokens <= 4096):
        raise InvalidInput(f"{where}.max_tokens: expected an integer in 1..4096")
    if temperature is not None and (not isinstance(temperature, (int, float)) or not 0 <= temperature <= 2):
        raise InvalidInput(f"{where}.temperature: expected a number in [0, 2]")
    return Query(question.strip(), tier=item.get("tier") or item.get("user_tier"), user_id=item.get("user_id"),
                 max_tokens=max_tokens, temperature=temperature)


def _strings(request: InferRequest, name: str, required: bool) -> list[str] | None:
    found = request.get_input_by_name(name)
    if found is None:
        if required:
            raise InvalidInput(f"input {name!r}: missing (expected a BYTES tensor of questions)")
        return None
    if found.datatype != "BYTES":
        raise InvalidInput(f"input {name!r}: expected datatype BYTES, got {found.datatype}")
    values = found.data if isinstance(found.data, list) else list(found.as_numpy().reshape(-1))
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]


def v2_queries(request: InferRequest) -> list[Query]:
    questions = _strings(request, "question", True) or []
    users = _strings(request, "user_id", False)
    tiers = _strings(request, "tier", False)
    queries = []
    for i, question in enumerate(questions):
        item: dict[str, Any] = {"question": question}
        if users:
            item["user_id"] = users[min(i, len(users) - 1)]
        if tiers:
            item["tier"] = tiers[min(i, len(tiers) - 1)]
        queries.append(_query(item, f"question[{i}]"))
    if not queries:
        raise InvalidInput("input 'question': expected at least one question")
    return queries


def v2_response(request: InferRequest, model_name: str, answers: list[Answer]) -> InferResponse:
    texts = [a.text for a in answers]
    records = [json.dumps({k: v for k, v in a.as_dict().items() if k != "answer"}, ensure_ascii=False) for a in answers]
    outputs = [InferOutput("answer", [len(texts)], "BYTES", texts),
               InferOutput("metadata", [len(records)], "BYTES", records)]
    return InferResponse(response_id=request.id or "", model_name=model_name, infer_outputs=outputs)


def registry_fingerprint(config: RouterConfig) -> tuple[tuple[str, str], ...]:
    """(provider, version) of every ``models:/NAME@ALIAS`` provider, read from the registry (cheap)."""
    found = []
    for name, spec in sorted(config.providers.items()):
        match = REGISTRY_REF.match(spec.model) if spec.kind in ("llama_cpp", "transformers") else None
        if match and match["alias"]:
            found.append((name, _alias_version(match["name"], match["alias"], config.tracking_uri)))
    return tuple(found)


def _alias_version(model: str, alias: str, uri: str | None) -> str:
    from mlflow import MlflowClient  # heavy and optional: only registry polling needs MLflow
    from mlflow.exceptions import MlflowException

    resolved = tracking_uri(uri)
    try:
        return str(MlflowClient(tracking_uri=resolved, registry_uri=resolved)
                   .get_model_version_by_alias(model, alias).version)
    except MlflowException:
        return "none"
