"""Schemathesis against the gateway's own OpenAPI: no 5xx and no response outside the schema."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from melancia.api.app import create_app
from melancia.api.backend import InProcessBackend
from melancia.api.store import Store
from tests.api.harness import api_settings, fake_router

pytestmark = pytest.mark.integration

_store = None
_keys: dict[str, str] = {}


def _app():
    global _store
    import tempfile

    _store = Store(f"sqlite:///{tempfile.mkdtemp()}/fuzz.db")
    _keys["admin"] = _store.create_key("fuzz-admin", "premium", ["admin"])[1]
    return create_app(api_settings(), backend=InProcessBackend(fake_router()), store=_store)


schema = schemathesis.openapi.from_asgi("/openapi.json", _app())


# Derandomized: CI sees the same 25 examples per operation every run (a failure reproduces); raise
# max_examples locally to explore further.
@schema.parametrize()
@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_no_server_errors_and_responses_match_the_schema(case):
    case.call_and_validate(headers={"X-API-Key": _keys["admin"]})
