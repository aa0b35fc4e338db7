"""`SqlResponseStore` on SQLite and PostgreSQL: stored responses, their chains, expiry and deletion."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import orjson

from calcifer.domain.types import StoredResponse
from calcifer.storage.responses import SqlResponseStore
from tests.storage.conftest import Open

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def made(
    response_id: str, previous: str | None = None, *, ttl: float = 3600, key: str | None = "key_a"
) -> StoredResponse:
    usage: dict[str, object] = {
        "input_tokens": 3,
        "output_tokens": 2,
        "cost": orjson.Fragment(b"0.000012345678901"),
    }
    body: dict[str, object] = {
        "id": response_id,
        "object": "response",
        "output": [{"type": "message", "id": f"m_{response_id}"}],
        "usage": usage,
    }
    return StoredResponse(
        id=response_id,
        created_at=NOW,
        expires_at=NOW + timedelta(seconds=ttl),
        key_id=key,
        model="claude-sonnet-4-5",
        provider="anthropic",
        body=body,
        previous_id=previous,
        input_items=({"type": "message", "id": f"in_{response_id}", "role": "user", "content": "hi"},),
    )


async def test_a_response_comes_back_as_it_was_stored(open_db: Open) -> None:
    store = SqlResponseStore(await open_db())
    await store.put(made("resp_1"))
    got = await store.get("resp_1", NOW)
    assert got is not None
    assert got.key_id == "key_a" and got.provider == "anthropic" and got.created_at == NOW
    assert got.input_items == made("resp_1").input_items
    # The cost reads back digit for digit (not through a float).
    assert b'"cost":0.000012345678901' in orjson.dumps(got.body)
    assert await store.get("resp_missing", NOW) is None


async def test_a_chain_is_followed_back_oldest_first(open_db: Open) -> None:
    store = SqlResponseStore(await open_db())
    for response in (made("resp_1"), made("resp_2", "resp_1"), made("resp_3", "resp_2"), made("resp_x")):
        await store.put(response)
    chain = await store.chain("resp_3", NOW)
    assert [r.id for r in chain] == ["resp_1", "resp_2", "resp_3"]
    assert [r.id for r in await store.chain("resp_2", NOW)] == ["resp_1", "resp_2"]
    assert await store.chain("resp_unknown", NOW) == ()


async def test_expired_responses_are_neither_read_nor_kept(open_db: Open) -> None:
    store = SqlResponseStore(await open_db(), purge_every=0)
    await store.put(made("resp_old", ttl=60))
    await store.put(made("resp_new", "resp_old", ttl=7200))
    later = NOW + timedelta(minutes=5)
    assert await store.get("resp_old", later) is None
    assert [r.id for r in await store.chain("resp_new", later)] == ["resp_new"]
    # A write after the expiry purges the expired row for good.
    await store.put(replace(made("resp_late"), created_at=later + timedelta(hours=3)))
    assert await store.get("resp_old", NOW) is None


async def test_delete_removes_only_that_response(open_db: Open) -> None:
    store = SqlResponseStore(await open_db())
    await store.put(made("resp_1"))
    await store.put(made("resp_2", "resp_1"))
    assert await store.delete("resp_1") is True
    assert await store.delete("resp_1") is False
    assert await store.get("resp_1", NOW) is None
    assert [r.id for r in await store.chain("resp_2", NOW)] == ["resp_2"]
