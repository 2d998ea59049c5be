"""The API store: keys created, listed, revoked and authenticated; only salted hashes on disk; the query log."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from melancia.api.store import ApiKey, Store, StoreError
from melancia.settings import get_settings


def _secret(plaintext: str) -> str:
    return plaintext[len("mk_") + 12 + 1:]


def _db_bytes(path: Path) -> bytes:
    return b"".join(part.read_bytes() for part in sorted(path.parent.glob(path.name + "*")))


def test_default_store_lives_in_melancia_home(melancia_home: Path) -> None:
    store = Store()
    assert store.url == f"sqlite:///{get_settings().paths.store_db}"
    assert (melancia_home / "melancia.db").is_file()
    store.close()


def test_create_list_revoke_authenticate_round_trip() -> None:
    store = Store()
    key, plaintext = store.create_key("loja-a", "premium", ["user", "admin"])
    other, other_plaintext = store.create_key("loja-b", "free")

    assert plaintext.startswith(f"mk_{key.id}_") and len(key.id) == 12 and len(_secret(plaintext)) >= 32
    assert key.tier == "premium" and key.scopes == ("user", "admin") and key.has_scope("user")
    assert other.scopes == ("user",) and other.has_scope("user") and not other.has_scope("admin")
    assert key.created_at.tzinfo is not None and key.revoked_at is None and key.last_used_at is None

    found = store.authenticate(plaintext)
    assert isinstance(found, ApiKey) and found.id == key.id and found.last_used_at is not None
    assert store.authenticate(other_plaintext).name == "loja-b"
    assert [k.name for k in store.list_keys()] == ["loja-a", "loja-b"]

    revoked = store.revoke_key("loja-b")
    assert revoked.revoked_at is not None and revoked.id == other.id
    assert store.authenticate(other_plaintext) is None
    assert store.revoke_key(other.id).revoked_at == revoked.revoked_at  # by id, and idempotent
    assert [k.name for k in store.list_keys(include_revoked=False)] == ["loja-a"]
    assert [k.revoked for k in store.list_keys()] == [False, True]

    shown = store.get_key("loja-a").as_dict()
    assert shown["name"] == "loja-a" and shown["scopes"] == ["user", "admin"] and shown["last_used_at"]
    assert set(shown) == {"id", "name", "tier", "scopes", "created_at", "revoked_at", "last_used_at", "revoked"}
    assert _secret(plaintext) not in repr(shown) and _secret(plaintext) not in repr(found)


def test_secret_is_never_stored_and_hashes_are_salted(monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store()
    _, first = store.create_key("a", "free")
    monkeypatch.setattr("melancia.api.store.secrets.token_urlsafe", lambda nbytes: "S" * 43)
    _, second = store.create_key("b", "free")
    _, third = store.create_key("c", "free")
    store.close()

    assert _secret(second) == _secret(third) == "S" * 43
    data = _db_bytes(get_settings().paths.store_db)
    for plaintext in (first, second, third):
        assert plaintext.encode() not in data and _secret(plaintext).encode() not in data
    with sqlite3.connect(get_settings().paths.store_db) as db:
        rows = dict(db.execute("SELECT name, secret_hash FROM api_keys").fetchall())
        salts = {salt for (salt,) in db.execute("SELECT salt FROM api_keys")}
    assert rows["b"] != rows["c"] and len(set(rows.values())) == 3 and len(salts) == 3

    reopened = Store()
    assert reopened.authenticate(second).name == "b" and reopened.authenticate(third).name == "c"


def test_tampered_malformed_and_unknown_keys_fail() -> None:
    store = Store()
    key, plaintext = store.create_key("a", "free")
    secret = _secret(plaintext)
    flipped = ("A" if secret[-1] != "A" else "B")
    assert store.authenticate(plaintext[:-1] + flipped) is None
    assert store.authenticate(f"mk_{key.id}_{'x' * 43}") is None
    assert store.authenticate(f"mk_{'Z' * 12}_{secret}") is None  # right secret, unknown id
    for bad in ("", "mk_", plaintext[:20], "Bearer " + plaintext, plaintext.replace("mk_", "sk_"), None):
        assert store.authenticate(bad) is None
    assert store.authenticate(f"  {plaintext}\n").id == key.id  # pasted with blanks around it
    assert store.get_key("a").last_used_at is not None


def test_authenticate_after_revocation_in_another_store_fails() -> None:
    first, second = Store(), Store()
    _, plaintext = first.create_key("a", "free")
    assert first.authenticate(plaintext) is not None  # now remembered as verified by ``first``
    second.revoke_key("a")
    assert first.authenticate(plaintext) is None


def test_duplicate_name_and_bad_input_errors() -> None:
    store = Store()
    store.create_key("a", "free")
    with pytest.raises(StoreError, match="already exists"):
        store.create_key("a", "premium")
    store.revoke_key("a")
    with pytest.raises(StoreError, match="already exists"):
        store.create_key("a", "free")
    for tier in ("", "Free", "1free", "free tier", "x" * 33, None):
        with pytest.raises(StoreError, match="bad tier"):
            store.create_key("b", tier)
    for scopes in (["root"], ["user", "superuser"], []):
        with pytest.raises(StoreError, match="bad scopes"):
            store.create_key("b", "free", scopes)
    with pytest.raises(StoreError, match="name"):
        store.create_key("  ", "free")
    with pytest.raises(StoreError, match="no API key"):
        store.revoke_key("nobody")
    assert store.create_key("b", "enterprise_2-x", "admin")[0].scopes == ("admin",)
    assert [k.name for k in store.list_keys()] == ["a", "b"]


def test_query_log_round_trip() -> None:
    store = Store()
    key, _ = store.create_key("a", "free")
    record = {"answer": "ACOS = investimento / receita.", "routing": {"arm": "b", "provider": "local"},
              "tokens": {"prompt": 12, "completion": 30}, "question": "ignored: the fixed field wins"}
    store.log_query("q-1", key_id=key.id, user_id="u-7", tier="free", question="O que é ACOS?", record=record)
    store.log_query("q-2", key_id=None, user_id=None, tier="premium", question="E ROAS?", record={})

    logged = store.get_query("q-1")
    assert logged["query_id"] == "q-1" and logged["tier"] == "free" and logged["user_id"] == "u-7"
    assert logged["question"] == "O que é ACOS?" and logged["key_id"] == key.id
    assert logged["answer"] == record["answer"] and logged["routing"] == record["routing"]
    assert logged["tokens"] == {"prompt": 12, "completion": 30} and "T" in logged["created_at"]
    assert store.get_query("q-2")["user_id"] is None
    assert store.get_query("missing") is None
    assert store.count_queries() == 2
    with pytest.raises(StoreError, match="already logged"):
        store.log_query("q-1", key_id=None, user_id=None, tier="free", question="again", record={})


def test_second_store_on_same_url_sees_the_data(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    first = Store(url)
    key, plaintext = first.create_key("a", "premium")
    first.log_query("q", key_id=key.id, user_id=None, tier="premium", question="?", record={"answer": "!"})

    second = Store(url)
    assert [k.id for k in second.list_keys()] == [key.id]
    assert second.authenticate(plaintext).id == key.id
    assert second.get_query("q")["answer"] == "!" and second.count_queries() == 1
    first.close()
    second.close()


def test_store_is_usable_from_a_thread_pool() -> None:
    store = Store()
    _, plaintext = store.create_key("a", "free")

    def work(number: int) -> bool:
        store.log_query(f"q-{number}", key_id=None, user_id=None, tier="free", question="?", record={"n": number})
        return store.authenticate(plaintext) is not None

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert all(pool.map(work, range(40)))
    assert store.count_queries() == 40


def test_in_memory_sqlite_is_shared_between_threads() -> None:
    store = Store("sqlite://")
    store.create_key("a", "free")
    with ThreadPoolExecutor(max_workers=2) as pool:
        assert pool.submit(lambda: [k.name for k in store.list_keys()]).result() == ["a"]
