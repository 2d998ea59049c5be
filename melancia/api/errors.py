"""Every error of the gateway as JSON ``{"error": {"code", "type", "message", "request_id"}}``.

HTTP errors keep their status and headers, validation errors name the field, a provider outage is 503
with ``Retry-After``, and anything unexpected is a 500 whose details stay in the server log (the
request id ties the two together); a stack trace never reaches the client.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from melancia.api.schemas import ErrorResponse
from melancia.router.router import NoProviderAvailable

log = logging.getLogger("melancia.api")
ERROR_TYPES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
               413: "payload_too_large", 422: "validation_error", 429: "rate_limited", 500: "internal_error",
               503: "service_unavailable"}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 403, 404, 413, 422, 429, 500, 503)}
"""Documented on every route of the OpenAPI schema."""


def error_body(status: int, message: str, request_id: str | None = None) -> dict[str, Any]:
    return {"error": {"code": status, "type": ERROR_TYPES.get(status, "error"), "message": message,
                      "request_id": request_id}}


def error_response(request: Request, status: int, message: str,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message, getattr(request.state, "request_id", None)), status_code=status,
                        headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(request, exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'] if p != 'body')}: {e['msg']}" for e in exc.errors())
        return error_response(request, 422, problems or "invalid request")

    @app.exception_handler(NoProviderAvailable)
    async def unavailable(request: Request, exc: NoProviderAvailable) -> JSONResponse:
        return error_response(request, 503, str(exc), {"Retry-After": "30"})

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error (request %s)", getattr(request.state, "request_id", "?"))
        return error_response(request, 500, "internal error; the request id identifies it in the server log")
