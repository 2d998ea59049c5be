"""Request and response bodies of the REST API (the plan's field names and limits)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, field_validator


# "At least 3 non-blank characters" as the OpenAPI schema states it, so clients and fuzzers generate what
# the validator below accepts (Python's \s is str.isspace(), the test _not_blank applies).
NON_BLANK_QUESTION = r"\S[\s\S]*\S[\s\S]*\S"


class QueryRequest(BaseModel):
    question: str = Field(min_length=3, max_length=500, examples=["O que é ACOS?"],
                          json_schema_extra={"pattern": NON_BLANK_QUESTION})
    user_tier: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_-]{0,31}$",
                                  description="Optional; the API key's tier decides. A lower tier than the key's is "
                                              "honoured, a higher one is refused with 403.")
    user_id: str | None = Field(default=None, max_length=128, description="Keeps the user in one A/B arm.")
    max_tokens: int = Field(default=500, ge=50, le=2000)
    temperature: float = Field(default=0.7, ge=0.0, le=1.0)

    @field_validator("user_id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("question")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if len(value.strip()) < 3:
            raise ValueError("question must have at least 3 non-blank characters")
        return value


class SourceOut(BaseModel):
    rank: int
    doc_id: str
    title: str
    heading: str
    source: str
    score: float
    excerpt: str


class QueryResponse(BaseModel):
    query_id: str
    answer: str
    provider: str
    model_name: str
    latency_seconds: float
    routing_reason: str
    estimated_cost: float
    success: bool
    timestamp: datetime
    tier: str
    arm: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cached: bool = False
    sources: list[SourceOut] = Field(default_factory=list)
    calculation: dict[str, Any] | None = None
    fallbacks: list[dict[str, str]] = Field(default_factory=list)


class ModelInfo(BaseModel):
    provider: str
    name: str
    kind: str
    status: str
    reason: str | None = None
    circuit: str
    price_input_per_million: float
    price_output_per_million: float


class HealthResponse(BaseModel):
    status: str
    timestamp: float
    version: str
    uptime_seconds: float


class ReadyResponse(BaseModel):
    ready: bool
    reason: str


class ErrorBody(BaseModel):
    code: int
    type: str
    message: str
    request_id: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody
