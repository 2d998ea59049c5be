"""``/api/v1/models``: the providers behind the gateway with their live status, and their statistics."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter

from melancia.api.deps import ServicesDep, UserKey
from melancia.api.schemas import ModelInfo

router = APIRouter(prefix="/api/v1/models", tags=["Models"])


@router.get("", response_model=list[ModelInfo])
async def models(key: UserKey, state: ServicesDep) -> list[ModelInfo]:
    backend = state.backend
    status = await asyncio.to_thread(backend.status) if backend else {"providers": []}
    return [ModelInfo(provider=p["name"], name=p["model"], kind=p["kind"],
                      status="available" if p["available"] and p["circuit"] != "open" else "unavailable",
                      reason=p["reason"] or (f"circuit open, retry in {p['retry_in_s']} s"
                                             if p["circuit"] == "open" else None),
                      circuit=p["circuit"], price_input_per_million=p["price_input_per_million"],
                      price_output_per_million=p["price_output_per_million"]) for p in status["providers"]]


@router.get("/stats")
async def models_stats(key: UserKey, state: ServicesDep) -> dict[str, Any]:
    return (await asyncio.to_thread(state.ready_backend().status))["stats"]
