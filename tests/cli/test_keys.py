"""`calcifer keys` on a real SQLite file and a real PostgreSQL schema: a key can belong to a team and a
user, and each change it makes is an audit-log entry by `cli`, never with the key's secret."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.cli.conftest import Output, Target, audit, calcifer


def test_key_changes_are_audited_without_the_secret(target: Target, capsys: Output) -> None:
    code, out, _ = calcifer(
        capsys, "keys", "create", "--name", "ada-laptop", "--max-budget", "2.500000000001",
        "--budget-period", "weekly", "--team-id", "search", "--user-id", "ada",
    )  # fmt: skip
    assert code == 0
    key_id, secret = out.split()[0], out.splitlines()[1].removeprefix("key: ")
    assert "$2.500000000001 weekly" in out
    assert calcifer(capsys, "keys", "update", key_id, "--rpm-limit", "60")[0] == 0
    assert calcifer(capsys, "keys", "revoke", key_id)[:2] == (0, f"revoked {key_id}\n")
    assert calcifer(capsys, "keys", "revoke", "key_nothing")[:2] == (1, "no key key_nothing\n")
    assert calcifer(capsys, "keys", "update", "key_nothing", "--rpm-limit", "1")[:2] == (
        1,
        "no key key_nothing\n",
    )

    entries = audit(target)
    assert [(e["actor"], e["action"], e["entity"], e["entity_id"]) for e in entries] == [
        ("cli", "create", "key", key_id),
        ("cli", "update", "key", key_id),
        ("cli", "revoke", "key", key_id),
    ]
    created = entries[0]["after"]
    assert (created["team_id"], created["user_id"], created["max_budget"]) == (
        "search",
        "ada",
        Decimal("2.500000000001"),
    )
    assert (entries[1]["before"]["rpm_limit"], entries[1]["after"]["rpm_limit"]) == (None, 60)
    assert entries[2]["after"] == {"revoked": True}
    assert secret not in str(entries)


def test_keys_get_and_lose_admin_roles(target: Target, capsys: Output) -> None:
    code, out, _ = calcifer(capsys, "keys", "create", "--name", "ops", "--role", "admin")
    assert code == 0 and "role=admin" in out.splitlines()[0]
    admin_id = out.split()[0]
    code, _, err = calcifer(capsys, "keys", "create", "--name", "lead", "--role", "team-admin")
    assert code == 2 and "--team-id" in err
    code, out, _ = calcifer(
        capsys, "keys", "create", "--name", "lead", "--role", "team-admin", "--team-id", "search"
    )
    assert code == 0 and "role=team-admin team=search" in out
    lead_id = out.split()[0]
    code, _, err = calcifer(capsys, "keys", "update", admin_id, "--role", "team-admin")
    assert code == 2 and "team" in err  # a team-admin key must belong to a team
    code, out, _ = calcifer(capsys, "keys", "update", admin_id, "--role", "team-admin", "--team-id", "ml")
    assert code == 0 and "role=team-admin team=ml" in out
    code, out, _ = calcifer(capsys, "keys", "update", lead_id, "--role", "none")
    assert code == 0 and "role=" not in out
    with pytest.raises(SystemExit):  # argparse refuses a role it does not know
        calcifer(capsys, "keys", "create", "--name", "x", "--role", "owner")
    changes = [
        (e["entity_id"], e["before"] and e["before"]["role"], e["after"]["role"]) for e in audit(target)
    ]
    assert changes == [
        (admin_id, None, "admin"),
        (lead_id, None, "team-admin"),
        (admin_id, "admin", "team-admin"),
        (lead_id, "team-admin", None),
    ]
