"""The `KeyStore` contract, run against SQLite and a real PostgreSQL (see conftest.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from calcifer.domain.errors import InvalidRequest
from calcifer.domain.keys import UNSET, KeyChanges, KeyStore, authenticate, issue_key
from calcifer.storage.database import Database
from calcifer.storage.keys import SqlKeyStore
from calcifer.storage.schema import virtual_keys

NOW = datetime(2026, 3, 1, 12, 0, 0, 654321, tzinfo=UTC)


async def test_is_a_key_store(db: Database) -> None:
    assert isinstance(SqlKeyStore(db), KeyStore)


async def test_a_key_round_trips_exactly(db: Database) -> None:
    store = SqlKeyStore(db)
    key, secret = issue_key(
        "team red",
        max_budget=Decimal("12.345678901234"),
        budget_period="monthly",
        models=("gpt-4o", "claude-sonnet-4"),
        rpm_limit=60,
        tpm_limit=10**10,
        metadata={"team": "red", "nested": {"a": [1, 2.5, None, "ü"]}},
        now=NOW,
    )
    await store.create(key)
    assert await store.get(key.id) == key
    assert await store.get_by_secret_hash(key.secret_hash) == key
    assert await authenticate(store, secret) == key
    got = await store.get(key.id)
    assert got is not None and type(got.max_budget) is Decimal and got.created_at.tzinfo is not None
    assert await store.get("key_missing") is None


async def test_no_budget_and_no_limits_stay_none(db: Database) -> None:
    store = SqlKeyStore(db)
    key, _ = issue_key("open", now=NOW)
    await store.create(key)
    got = await store.get(key.id)
    assert got is not None
    assert (got.max_budget, got.rpm_limit, got.tpm_limit, got.models, dict(got.metadata)) == (
        None,
        None,
        None,
        (),
        {},
    )


async def test_the_secret_is_never_stored(db: Database) -> None:
    store = SqlKeyStore(db)
    key, secret = issue_key("k", now=NOW)
    await store.create(key)
    async with db.engine.connect() as connection:
        stored = (await connection.execute(select(virtual_keys))).all()
    assert stored and not any(secret in str(value) or secret[8:] in str(value) for value in stored[0])


async def test_unknown_or_revoked_secrets_do_not_authenticate(db: Database) -> None:
    store = SqlKeyStore(db)
    key, secret = issue_key("k", now=NOW)
    await store.create(key)
    assert await authenticate(store, secret + "x") is None
    assert await authenticate(store, "") is None
    assert await store.revoke(key.id) is True
    assert await authenticate(store, secret) is None
    revoked = await store.get_by_secret_hash(key.secret_hash)
    assert revoked is not None and revoked.revoked
    assert await store.revoke(key.id) is True  # idempotent
    assert await store.revoke("key_missing") is False


async def test_list_is_oldest_first_and_hides_revoked_keys_unless_asked(db: Database) -> None:
    store = SqlKeyStore(db)
    keys = [issue_key(f"k{n}", now=NOW + timedelta(seconds=n))[0] for n in (2, 0, 1)]
    for key in keys:
        await store.create(key)
    await store.revoke(keys[2].id)
    assert [k.name for k in await store.list_keys()] == ["k0", "k2"]
    assert [k.name for k in await store.list_keys(include_revoked=True)] == ["k0", "k1", "k2"]


async def test_update_changes_only_what_is_set(db: Database) -> None:
    store = SqlKeyStore(db)
    key, secret = issue_key("k", max_budget=Decimal(5), rpm_limit=10, models=("a",), now=NOW)
    await store.create(key)
    changed = await store.update(
        key.id, KeyChanges(max_budget=None, tpm_limit=1000, models=("a", "b"), metadata={"x": 1})
    )
    assert changed is not None
    assert (changed.max_budget, changed.rpm_limit, changed.tpm_limit, changed.models) == (
        None,
        10,
        1000,
        ("a", "b"),
    )
    assert await store.get(key.id) == changed
    assert (changed.name, changed.secret_hash, changed.created_at) == (key.name, key.secret_hash, NOW)
    assert await authenticate(store, secret) == changed
    assert await store.update(key.id, KeyChanges()) == changed
    assert KeyChanges().name is UNSET


async def test_invalid_update_is_refused_and_leaves_the_key_alone(db: Database) -> None:
    store = SqlKeyStore(db)
    key, _ = issue_key("k", max_budget=Decimal(5), now=NOW)
    await store.create(key)
    with pytest.raises(InvalidRequest) as caught:
        await store.update(key.id, KeyChanges(max_budget=Decimal(-1), name="renamed"))
    assert caught.value.param == "max_budget"
    assert await store.get(key.id) == key


async def test_update_of_a_missing_key_is_none(db: Database) -> None:
    assert await SqlKeyStore(db).update("key_missing", KeyChanges(name="x")) is None
