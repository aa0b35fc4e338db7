"""Virtual keys: what a client presents instead of a provider key, with its budget, models and limits.

A key's secret is shown once, when it is issued; only its SHA-256 digest is stored, and a presented
secret is checked against the stored digest in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from typing import Final, Literal, Protocol, get_args, runtime_checkable

from calcifer.domain.checks import (
    ID_MAX,
    check_budget,
    check_metadata,
    check_models,
    check_name,
    check_rate_limits,
)
from calcifer.domain.errors import InvalidRequest
from calcifer.domain.limits import BudgetPeriod

KeyRole = Literal["admin", "team-admin"]
KEY_ROLES: tuple[KeyRole, ...] = get_args(KeyRole)
SECRET_PREFIX: Final = "sk-calc-"


@dataclass(frozen=True, slots=True)
class VirtualKey:
    """A virtual key as stored: never its secret, only the secret's digest.

    `models` empty means every model; `max_budget` None means no budget; limits None mean no limit.
    """

    id: str
    name: str
    secret_hash: str = field(repr=False)
    created_at: datetime
    max_budget: Decimal | None = None
    budget_period: BudgetPeriod = "total"
    models: tuple[str, ...] = ()
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    metadata: Mapping[str, object] = field(default_factory=dict)
    revoked: bool = False
    user_id: str | None = None
    team_id: str | None = None
    role: KeyRole | None = None

    def __post_init__(self) -> None:
        if isinstance(self.models, list):  # a JSON array, as clients send it
            object.__setattr__(self, "models", tuple(self.models))
        _check(self)

    def allows(self, model: str) -> bool:
        """Whether this key may use `model`."""
        return not self.models or model in self.models


class _Unset(Enum):
    UNSET = "UNSET"


UNSET: Final = _Unset.UNSET


@dataclass(frozen=True, slots=True)
class KeyChanges:
    """A partial update of a key: fields left `UNSET` keep their value (None is a value: "no limit")."""

    name: str | _Unset = UNSET
    max_budget: Decimal | _Unset | None = UNSET
    budget_period: BudgetPeriod | _Unset = UNSET
    models: tuple[str, ...] | _Unset = UNSET
    rpm_limit: int | _Unset | None = UNSET
    tpm_limit: int | _Unset | None = UNSET
    metadata: Mapping[str, object] | _Unset = UNSET
    user_id: str | _Unset | None = UNSET
    team_id: str | _Unset | None = UNSET
    role: KeyRole | _Unset | None = UNSET

    def apply(self, key: VirtualKey) -> VirtualKey:
        """`key` with these changes; raises `InvalidRequest` when the result is not a valid key."""
        changed = {
            name: getattr(self, name)
            for name in self.__dataclass_fields__
            if getattr(self, name) is not UNSET
        }
        return replace(key, **changed)


@runtime_checkable
class KeyStore(Protocol):
    """Where virtual keys live."""

    async def create(self, key: VirtualKey) -> None:
        """Store a new key (build it with `issue_key`)."""
        ...

    async def get(self, key_id: str) -> VirtualKey | None: ...

    async def get_by_secret_hash(self, secret_hash: str) -> VirtualKey | None:
        """The key whose secret has this digest, revoked or not (use `authenticate` to check a secret)."""
        ...

    async def list_keys(self, include_revoked: bool = False) -> tuple[VirtualKey, ...]:
        """Every key, oldest first."""
        ...

    async def update(self, key_id: str, changes: KeyChanges) -> VirtualKey | None:
        """Apply `changes` to a key and return it, or None when there is no such key."""
        ...

    async def revoke(self, key_id: str) -> bool:
        """Revoke a key for good; False when there is no such key. The row stays, for the ledger."""
        ...


def new_secret() -> str:
    """A fresh key secret: the prefix and 43 url-safe characters (256 random bits)."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


_SHA256 = hashlib.sha256()


def hash_secret(secret: str) -> str:
    """The stored form of a secret: its SHA-256 digest in hex (the secret is random, so no salt).

    Copies an empty hash rather than making a new one: every keyed request hashes its key, and a copy
    skips OpenSSL's look-up of the algorithm."""
    digest = _SHA256.copy()
    digest.update(secret.encode("utf-8"))
    return digest.hexdigest()


def issue_key(
    name: str,
    *,
    max_budget: Decimal | None = None,
    budget_period: BudgetPeriod = "total",
    models: tuple[str, ...] = (),
    rpm_limit: int | None = None,
    tpm_limit: int | None = None,
    metadata: Mapping[str, object] | None = None,
    now: datetime | None = None,
    user_id: str | None = None,
    team_id: str | None = None,
    role: KeyRole | None = None,
) -> tuple[VirtualKey, str]:
    """A new key and its secret. Show the secret once; store only the key."""
    secret = new_secret()
    key = VirtualKey(
        id="key_" + secrets.token_hex(8),
        name=name,
        secret_hash=hash_secret(secret),
        created_at=now or datetime.now(UTC),
        max_budget=max_budget,
        budget_period=budget_period,
        models=models,
        rpm_limit=rpm_limit,
        tpm_limit=tpm_limit,
        metadata=dict(metadata or {}),
        user_id=user_id,
        team_id=team_id,
        role=role,
    )
    return key, secret


async def authenticate(store: KeyStore, presented: str) -> VirtualKey | None:
    """The live key whose secret is `presented`, or None (unknown or revoked)."""
    return await live_key(store, hash_secret(presented))


async def live_key(store: KeyStore, digest: str) -> VirtualKey | None:
    """The live key whose secret has this digest (compared in constant time), or None."""
    key = await store.get_by_secret_hash(digest)
    if key is None or not hmac.compare_digest(key.secret_hash, digest) or key.revoked:
        return None
    return key


def _check(key: VirtualKey) -> None:
    check_name(key.name)
    check_budget(key.max_budget, key.budget_period)
    check_models(key.models)
    check_rate_limits(key.rpm_limit, key.tpm_limit)
    check_metadata(key.metadata)
    for param in ("user_id", "team_id"):
        owner = getattr(key, param)
        if owner is not None and (not isinstance(owner, str) or not owner or len(owner) > ID_MAX):
            raise InvalidRequest(f"'{param}' must be a non-empty id, or null.", param=param)
    if key.role is not None and key.role not in KEY_ROLES:
        raise InvalidRequest(f"'role' must be one of {', '.join(KEY_ROLES)}, or null.", param="role")
    if key.role == "team-admin" and key.team_id is None:
        raise InvalidRequest("A 'team-admin' key must belong to a team: set 'team_id'.", param="role")
    if key.created_at.tzinfo is None:
        raise ValueError("VirtualKey.created_at must be timezone-aware (UTC)")
