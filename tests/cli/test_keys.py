"""`calcifer keys` on a real SQLite file and a real PostgreSQL schema: a key can belong to a team and a
user, and each change it makes is an audit-log entry by `cli`, never with the key's secret."""

from __future__ import annotations

from decimal import Decimal

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
