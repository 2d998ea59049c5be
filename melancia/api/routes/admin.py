"""Admin-scope routes: the service's statistics and clearing the response cache."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter

from melancia import __version__
from melancia.api.deps import AdminKey, ServicesDep

router = APIRouter(prefix="/api/v1", tags=["Admin"])


@router.get("/stats")
async def stats(key: AdminKey, state: ServicesDep) -> dict[str, Any]:
    status = await asyncio.to_thread(state.ready_backend().status)
    return {"uptime_seconds": round(time.time() - state.started, 3), "version": __version__,
            "started_at": datetime.fromtimestamp(state.started, UTC).isoformat(),
            "queries_logged": state.store.count_queries(), "cache_entries": state.cache.size(),
            "keys": [k.as_dict() for k in state.store.list_keys()], "router": status["stats"]}


@router.post("/cache/clear")
async def clear_cache(key: AdminKey, state: ServicesDep) -> dict[str, Any]:
    return {"message": "cache cleared", "removed": state.cache.clear()}
