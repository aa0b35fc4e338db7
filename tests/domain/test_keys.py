"""Virtual keys: secrets, digests, validation and partial updates."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from calcifer.domain.errors import InvalidRequest
from calcifer.domain.keys import (
    SECRET_PREFIX,
    UNSET,
    KeyChanges,
    VirtualKey,
    hash_secret,
    issue_key,
    new_secret,
)
from calcifer.domain.limits import MAX_BUDGET

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def test_secrets_are_prefixed_long_url_safe_and_unique() -> None:
    secrets = {new_secret() for _ in range(200)}
    assert len(secrets) == 200
    for secret in secrets:
        assert secret.startswith(SECRET_PREFIX) and SECRET_PREFIX == "sk-calc-"
        body = secret[len(SECRET_PREFIX) :]
        assert len(body) >= 32
        assert set(body) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_the_stored_form_is_the_sha256_digest() -> None:
    assert hash_secret("sk-calc-abc") == hashlib.sha256(b"sk-calc-abc").hexdigest()
    assert hash_secret("sk-calc-abc") != hash_secret("sk-calc-abd")


def test_issue_key_returns_the_secret_once_and_stores_its_digest() -> None:
    key, secret = issue_key("ci", max_budget=Decimal("10"), models=("gpt-4o",), now=NOW)
    assert key.secret_hash == hash_secret(secret)
    assert key.id.startswith("key_") and len(key.id) == 20
    assert (key.created_at, key.revoked, key.budget_period) == (NOW, False, "total")
    assert secret not in repr(key) and key.secret_hash not in repr(key)
    other, other_secret = issue_key("ci")
    assert (other.id, other_secret) != (key.id, secret)
    assert other.created_at.tzinfo is not None


def test_a_key_with_no_models_allows_every_model() -> None:
    key, _ = issue_key("k", now=NOW)
    assert key.allows("anything")
    limited = replace(key, models=("a", "b"))
    assert limited.allows("a") and not limited.allows("c")


def test_models_given_as_a_json_array_become_a_tuple() -> None:
    key, _ = issue_key("k", models=["a", "b"], now=NOW)  # type: ignore[arg-type]
    assert key.models == ("a", "b")


@pytest.mark.parametrize(
    ("changes", "param"),
    [
        ({"name": ""}, "name"),
        ({"name": "  "}, "name"),
        ({"name": "x" * 257}, "name"),
        ({"max_budget": Decimal(-1)}, "max_budget"),
        ({"max_budget": Decimal("NaN")}, "max_budget"),
        ({"max_budget": 1.5}, "max_budget"),
        ({"max_budget": MAX_BUDGET + 1}, "max_budget"),  # more than a budget counter holds: a 400
        ({"budget_period": "hourly"}, "budget_period"),
        ({"user_id": ""}, "user_id"),
        ({"team_id": 7}, "team_id"),
        ({"role": "root"}, "role"),
        ({"role": "team-admin"}, "role"),  # a team admin needs a team
        ({"models": ("a", "")}, "models"),
        ({"models": "gpt-4o"}, "models"),
        ({"rpm_limit": 0}, "rpm_limit"),
        ({"rpm_limit": True}, "rpm_limit"),
        ({"tpm_limit": -5}, "tpm_limit"),
        ({"tpm_limit": 1.0}, "tpm_limit"),
        ({"metadata": ["a"]}, "metadata"),
        ({"metadata": {1: "a"}}, "metadata"),
        ({"metadata": {"a": object()}}, "metadata"),
    ],
)
def test_invalid_keys_are_invalid_requests_naming_the_field(changes: dict[str, object], param: str) -> None:
    key, _ = issue_key("k", now=NOW)
    with pytest.raises(InvalidRequest) as caught:
        replace(key, **changes)  # type: ignore[arg-type]
    assert caught.value.param == param


def test_created_at_must_be_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        VirtualKey("key_1", "k", "digest", datetime(2026, 1, 1))


def test_changes_apply_only_what_is_set_and_none_is_a_value() -> None:
    key, _ = issue_key("k", max_budget=Decimal(5), rpm_limit=3, now=NOW)
    assert KeyChanges().apply(key) == key
    changed = KeyChanges(max_budget=None, budget_period="daily", rpm_limit=None, name="n").apply(key)
    assert (changed.max_budget, changed.budget_period, changed.rpm_limit, changed.name) == (
        None,
        "daily",
        None,
        "n",
    )
    assert (changed.id, changed.secret_hash, changed.created_at) == (key.id, key.secret_hash, key.created_at)
    assert KeyChanges().metadata is UNSET
    with pytest.raises(InvalidRequest):
        KeyChanges(rpm_limit=0).apply(key)
