"""The API gateway's database: API keys (only salted hashes of their secrets) and the query log.

SQLAlchemy 2.x, SQLite in ``MELANCIA_HOME/melancia.db`` by default; any SQLAlchemy URL works
(``postgresql+psycopg://...`` when several API replicas share one database). Tables are created if missing.

A key reads ``mk_<key id>_<secret>``: the 12-character key id finds the row, the secret is checked against
its scrypt hash (per-key random salt) with a constant-time comparison. The plaintext is returned once, by
:meth:`Store.create_key`, and never stored.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Engine, LargeBinary, String, Text, TypeDecorator, create_engine, event, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.pool import StaticPool

from melancia.errors import MelanciaError
from melancia.settings import get_settings

SCOPES = ("user", "admin")
KEY_PREFIX = "mk_"
KEY_ID_LENGTH = 12
SECRET_BYTES = 32  # token_urlsafe(32) -> 43 characters
TIER_PATTERN = re.compile(r"[a-z][a-z0-9_-]{0,31}")
NAME_MAX = 100
_KEY_ID_ALPHABET = string.ascii_letters + string.digits
_KEY_PATTERN = re.compile(rf"{KEY_PREFIX}([A-Za-z0-9]{{{KEY_ID_LENGTH}}})_([A-Za-z0-9_-]{{32,128}})")
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}
_VERIFIED_MAX = 10_000


class StoreError(MelanciaError, ValueError):
    """A key or query-log request that cannot be honoured (unknown key, duplicate name, bad tier or scope)."""


class _UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone: store naive UTC, read back as UTC)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class _Base(DeclarativeBase):
    pass


class _KeyRow(_Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(KEY_ID_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX), unique=True)
    tier: Mapped[str] = mapped_column(String(32))
    scopes: Mapped[str] = mapped_column(String(200))
    salt: Mapped[bytes] = mapped_column(LargeBinary(32))
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(64))
    created_at: Mapped[datetime] = mapped_column(_UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(_UTCDateTime(), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(_UTCDateTime(), nullable=True)


class _QueryRow(_Base):
    __tablename__ = "query_log"

    query_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(_UTCDateTime(), index=True)
    key_id: Mapped[str | None] = mapped_column(String(KEY_ID_LENGTH), nullable=True, index=True)
    user_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    tier: Mapped[str] = mapped_column(String(32))
    question: Mapped[str] = mapped_column(Text)
    record: Mapped[dict] = mapped_column(JSON)


@dataclass(frozen=True)
class ApiKey:
    """An API key as the gateway sees it: never its secret nor its hash."""

    id: str
    name: str
    tier: str
    scopes: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def has_scope(self, scope: str) -> bool:
        """Whether the key may act with ``scope`` (admin implies user)."""
        return scope in self.scopes or "admin" in self.scopes

    def as_dict(self) -> dict:
        """JSON-friendly view (ISO timestamps) for the CLI and the admin API."""
        return {"id": self.id, "name": self.name, "tier": self.tier, "scopes": list(self.scopes),
                "created_at": _iso(self.created_at), "revoked_at": _iso(self.revoked_at),
                "last_used_at": _iso(self.last_used_at), "revoked": self.revoked}


class Store:
    """API keys and the query log in one SQLAlchemy database; safe to share between threads."""

    def __init__(self, url: str | None = None) -> None:
        if url is None:
            path = get_settings().paths.store_db
            path.parent.mkdir(parents=True, exist_ok=True)
            url = f"sqlite:///{path}"
        self.url = url
        self.engine = _make_engine(url)
        _Base.metadata.create_all(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._verified: dict[str, bytes] = {}  # key id -> fast digest of a secret scrypt already accepted
        self._verified_lock = threading.Lock()
        self._pepper = secrets.token_bytes(32)  # process-local: the fast digests mean nothing outside it

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    # -- API keys --------------------------------------------------------------------------------------------

    def create_key(self, name: str, tier: str, scopes: Sequence[str] = ("user",)) -> tuple[ApiKey, str]:
        """A new key named ``name``; returns it with its plaintext, which is shown this once and never stored."""
        name, tier, scope_text = _check_name(name), _check_tier(tier), ",".join(_check_scopes(scopes))
        secret = secrets.token_urlsafe(SECRET_BYTES)
        salt = secrets.token_bytes(16)
        row = _KeyRow(id=_new_key_id(), name=name, tier=tier, scopes=scope_text, salt=salt,
                      secret_hash=_hash_secret(secret, salt), created_at=_now())
        with self._sessions() as session:
            if session.scalar(select(_KeyRow.id).where(_KeyRow.name == name)) is not None:
                raise StoreError(f"an API key named {name!r} already exists")
            session.add(row)
            try:
                session.commit()
            except IntegrityError as exc:  # a concurrent create with the same name (or, vanishingly, the same id)
                raise StoreError(f"an API key named {name!r} already exists") from exc
            return _to_key(row), f"{KEY_PREFIX}{row.id}_{secret}"

    def list_keys(self, include_revoked: bool = True) -> list[ApiKey]:
        """Every key, oldest first."""
        query = select(_KeyRow).order_by(_KeyRow.created_at, _KeyRow.name)
        if not include_revoked:
            query = query.where(_KeyRow.revoked_at.is_(None))
        with self._sessions() as session:
            return [_to_key(row) for row in session.scalars(query)]

    def get_key(self, name_or_id: str) -> ApiKey:
        """The key with this id or name; StoreError when there is none."""
        with self._sessions() as session:
            return _to_key(self._find(session, name_or_id))

    def revoke_key(self, name_or_id: str) -> ApiKey:
        """Revoke the key with this id or name (revoking twice keeps the first revocation time)."""
        with self._sessions() as session:
            row = self._find(session, name_or_id)
            if row.revoked_at is None:
                row.revoked_at = _now()
                session.commit()
            key = _to_key(row)
        with self._verified_lock:
            self._verified.pop(key.id, None)
        return key

    def authenticate(self, plaintext: str) -> ApiKey | None:
        """The key ``plaintext`` belongs to, or None (unknown, malformed, wrong secret, revoked); notes its use."""
        match = _KEY_PATTERN.fullmatch(plaintext.strip()) if isinstance(plaintext, str) else None
        if match is None:
            return None
        key_id, secret = match.groups()
        with self._sessions() as session:
            row = session.get(_KeyRow, key_id)
            if row is None or row.revoked_at is not None or not self._secret_matches(row, secret):
                return None
            row.last_used_at = _now()
            session.commit()
            return _to_key(row)

    def _secret_matches(self, row: _KeyRow, secret: str) -> bool:
        """scrypt check, skipped when this process already accepted this very secret for this key."""
        fast = hmac.digest(self._pepper, f"{row.id}:{secret}".encode(), "sha256")
        with self._verified_lock:
            known = self._verified.get(row.id)
        if known is not None and hmac.compare_digest(known, fast):
            return True
        if not hmac.compare_digest(_hash_secret(secret, row.salt), row.secret_hash):
            return False
        with self._verified_lock:
            if len(self._verified) >= _VERIFIED_MAX:
                self._verified.clear()
            self._verified[row.id] = fast
        return True

    @staticmethod
    def _find(session: Session, name_or_id: str) -> _KeyRow:
        row = session.get(_KeyRow, name_or_id) or session.scalar(select(_KeyRow).where(_KeyRow.name == name_or_id))
        if row is None:
            raise StoreError(f"no API key with id or name {name_or_id!r}")
        return row

    # -- query log -------------------------------------------------------------------------------------------

    def log_query(self, query_id: str, *, key_id: str | None, user_id: str | None, tier: str, question: str,
                  record: dict) -> None:
        """Keep one answered query; ``record`` is any JSON-friendly detail (answer, routing, tokens, cost...)."""
        row = _QueryRow(query_id=query_id, created_at=_now(), key_id=key_id, user_id=user_id, tier=tier,
                        question=question, record=dict(record))
        with self._sessions() as session:
            session.add(row)
            try:
                session.commit()
            except IntegrityError as exc:
                raise StoreError(f"query {query_id!r} is already logged") from exc

    def get_query(self, query_id: str) -> dict | None:
        """The logged query as one flat dict (the fixed fields win over same-named record fields), or None."""
        with self._sessions() as session:
            row = session.get(_QueryRow, query_id)
            if row is None:
                return None
            out: dict[str, Any] = {"query_id": row.query_id, "created_at": _iso(row.created_at), "tier": row.tier,
                                   "user_id": row.user_id, "key_id": row.key_id, "question": row.question}
            out.update({name: value for name, value in (row.record or {}).items() if name not in out})
            return out

    def count_queries(self) -> int:
        with self._sessions() as session:
            return session.scalar(select(func.count()).select_from(_QueryRow)) or 0


def _make_engine(url: str) -> Engine:
    """An engine usable from a thread pool (SQLite: no same-thread check; in-memory: one shared connection)."""
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    connect_args = {"check_same_thread": False, "timeout": 30}
    if url in ("sqlite://", "sqlite:///:memory:") or "mode=memory" in url:
        return create_engine(url, connect_args=connect_args, poolclass=StaticPool)
    engine = create_engine(url, connect_args=connect_args)
    event.listen(engine, "connect", _sqlite_wal)
    return engine


def _sqlite_wal(connection: Any, _: Any) -> None:
    """Write-ahead logging: readers do not wait for the query log's writers, commits skip a full fsync."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _hash_secret(secret: str, salt: bytes) -> bytes:
    return hashlib.scrypt(secret.encode(), salt=salt, **_SCRYPT)


def _new_key_id() -> str:
    return "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(KEY_ID_LENGTH))


def _check_name(name: str) -> str:
    name = name.strip() if isinstance(name, str) else ""
    if not name or len(name) > NAME_MAX:
        raise StoreError(f"an API key name must be 1 to {NAME_MAX} characters, got {name!r}")
    return name


def _check_tier(tier: str) -> str:
    if not isinstance(tier, str) or not TIER_PATTERN.fullmatch(tier):
        raise StoreError(f"bad tier {tier!r}: a lowercase word such as free or premium ([a-z][a-z0-9_-]{{0,31}})")
    return tier


def _check_scopes(scopes: Sequence[str]) -> tuple[str, ...]:
    if isinstance(scopes, str):
        scopes = [part for part in re.split(r"[,\s]+", scopes) if part]
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise StoreError(f"bad scopes {list(scopes)!r}: choose among {', '.join(SCOPES)}")
    return tuple(scope for scope in SCOPES if scope in scopes)


def _to_key(row: _KeyRow) -> ApiKey:
    return ApiKey(id=row.id, name=row.name, tier=row.tier, scopes=tuple(s for s in row.scopes.split(",") if s),
                  created_at=row.created_at, revoked_at=row.revoked_at, last_used_at=row.last_used_at)


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
