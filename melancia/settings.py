"""Service settings read from the environment (``MELANCIA_*``) and the layout of local state.

Every piece of state MelancIA keeps on disk (datasets, models, the MLflow database, the retrieval
index, the API store, reports) lives under one redirectable folder, ``MELANCIA_HOME``
(default ``./.melancia``), so tests and parallel experiments simply point it elsewhere.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Process-wide settings; each field maps to ``MELANCIA_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="MELANCIA_", extra="ignore")

    home: Path = Field(default=Path(".melancia"), description="Folder that holds all local state.")
    model_cache: Path | None = Field(
        default=None, description="Where converted base models are kept (default: MELANCIA_HOME/models/base); "
                                  "share it between homes to convert the packaged model only once.")

    chroma_url: str | None = Field(
        default=None, description="Chroma server for the knowledge index, e.g. http://chromadb:8000 "
                                  "(default: an embedded Chroma in MELANCIA_HOME/index).")

    @cached_property
    def paths(self) -> HomePaths:
        return HomePaths(self.home, self.model_cache)


class HomePaths:
    """Well-known locations inside MELANCIA_HOME. Folders are created on first use, not here."""

    def __init__(self, home: Path, model_cache: Path | None = None) -> None:
        self.home = home.expanduser().resolve()
        self._model_cache = model_cache.expanduser().resolve() if model_cache else None

    @property
    def datasets(self) -> Path:
        return self.home / "datasets"

    @property
    def models(self) -> Path:
        return self.home / "models"

    @property
    def base_models(self) -> Path:
        return self._model_cache or self.models / "base"

    @property
    def runs(self) -> Path:
        return self.home / "runs"

    @property
    def reports(self) -> Path:
        return self.home / "reports"

    @property
    def index(self) -> Path:
        return self.home / "index"

    @property
    def mlflow_db(self) -> Path:
        return self.home / "mlflow.db"

    @property
    def store_db(self) -> Path:
        return self.home / "melancia.db"


def get_settings() -> Settings:
    """Settings read now from the environment (cheap; tests change MELANCIA_HOME between calls)."""
    return Settings()
