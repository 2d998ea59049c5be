"""Settings of the API gateway, from the environment (``MELANCIA_API_*``) through pydantic-settings.

Dict and list fields take JSON, e.g.
``MELANCIA_API_RATE_LIMITS='{"free": {"requests_per_minute": 10, "tokens_per_minute": 5000}}'``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class TierLimits(BaseModel):
    requests_per_minute: int = Field(ge=1)
    tokens_per_minute: int = Field(ge=1)


DEFAULT_LIMITS = {"free": TierLimits(requests_per_minute=30, tokens_per_minute=20_000),
                  "premium": TierLimits(requests_per_minute=120, tokens_per_minute=200_000)}


class APISettings(BaseSettings):
    """Every field maps to ``MELANCIA_API_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="MELANCIA_API_", extra="ignore")

    router_config: Path = Field(default=Path("configs/router.yaml"),
                                description="Router config used in process (when predictor_url is unset).")
    predictor_url: str | None = Field(default=None, description="KServe predictor to answer through, e.g. "
                                      "http://melancia-predictor.default.svc; unset: the router runs in process.")
    predictor_timeout_s: float = Field(default=120.0, gt=0)
    database_url: str | None = Field(default=None, description="SQLAlchemy URL of the key and query store "
                                     "(default sqlite in MELANCIA_HOME/melancia.db; postgresql+psycopg://... works).")
    redis_url: str | None = Field(default=None, description="Redis for rate limits and the cache shared by "
                                  "replicas (unset: in-process).")
    rate_limits: dict[str, TierLimits] = Field(default_factory=lambda: dict(DEFAULT_LIMITS))
    cache_ttl_s: float = Field(default=3600.0, ge=0, description="0 disables the response cache.")
    cache_max_entries: int = Field(default=10_000, ge=1)
    cors_origins: list[str] = Field(default_factory=list, description="Browser origins allowed to call the API.")
    cors_allow_credentials: bool = False
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    log_prompts: bool = Field(default=False, description="Log questions and answers (off: only their sizes).")
    grace_period_s: int = Field(default=30, ge=0, description="How long shutdown waits for in-flight requests.")

    @model_validator(mode="after")
    def _no_wildcard_with_credentials(self) -> APISettings:
        if self.cors_allow_credentials and "*" in self.cors_origins:
            raise ValueError("cors_origins: '*' cannot be combined with cors_allow_credentials; list the origins")
        return self
