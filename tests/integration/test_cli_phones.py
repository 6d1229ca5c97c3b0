"""`phones add | set-status | list` through the CLI, on SQLite and on PostgreSQL."""

from __future__ import annotations

import os

import msgspec
import pytest
from click.testing import CliRunner

from cerniq_outreach.entrypoints.cli import main

import services

CONFIG_PREFIXES = ("CERNIQ_", "TIMELINESAI_", "INSTANTLY_", "RESEND_")
# Where the test services are: kept, as the PostgreSQL server is looked up during the test.
TEST_VARIABLES = ("CERNIQ_TEST_", services.REQUIRE_SERVICES)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """Run each test with none of the developer's own configuration variables."""
    for name in [n for n in os.environ if n.startswith(CONFIG_PREFIXES)]:
        if not name.startswith(TEST_VARIABLES):
            monkeypatch.delenv(name)


def cli(url: str, *args: str):
    env = {"CERNIQ_DATABASE_URL": url, "CERNIQ_LOG_FORMAT": "json"}
    return CliRunner(env=env).invoke(main, list(args), prog_name="cerniq-outreach")


def ok(url: str, *args: str):
    result = cli(url, *args)
    assert result.exit_code == 0, result.stderr
    return result


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request, tmp_path):
    if request.param == "sqlite":
        database = f"sqlite:///{tmp_path / 'cerniq.db'}"
        ok(database, "migrate")
        yield database
        return
    server = request.getfixturevalue("postgres_server_url")
    with services.fresh_database(server) as database:
        ok(database, "migrate")
        yield database


def listed(url: str, tenant: str = "t1") -> list[dict]:
    result = ok(url, "phones", "list", "--tenant", tenant, "--json")
    return [msgspec.json.decode(line) for line in result.stdout.splitlines()]


def test_add_then_list_shows_the_number_in_e164_with_its_quota(url):
    """An added number is listed at once: E.164, ACTIVE, today's use and ramped limit."""
    added = ok(
        url,
        "phones",
        "add",
        "0722 123 456",
        "--tenant",
        "t1",
        "--label",
        "Vânzări 1",
        "--account-id",
        "acc-7",
        "--warmup-start",
        "none",
        "--daily-limit",
        "150",
        "--json",
    )
    phone = msgspec.json.decode(added.stdout)
    assert (phone["number"], phone["status"], phone["daily_limit"]) == (
        "+40722123456",
        "ACTIVE",
        150,
    )
    ok(url, "phones", "add", "+40744000111", "--tenant", "t1", "--warmup-start", "2026-03-02")
    rows = listed(url)
    assert [(r["number"], r["label"], r["account_id"]) for r in rows] == [
        ("+40722123456", "Vânzări 1", "acc-7"),
        ("+40744000111", None, None),
    ]
    assert (rows[0]["used_today"], rows[0]["limit_today"]) == (0, 150)
    assert rows[1]["warmup_started"] == "2026-03-02"
    assert listed(url, "t2") == []
    table = ok(url, "phones", "list", "--tenant", "t1").stdout
    assert "+40722123456" in table
    assert "0/150" in table
    assert phone["phone_id"] in table


def test_a_number_already_in_the_pool_exits_1_with_one_line(url):
    """The same number in another form is refused: exit 1, the reason on stderr."""
    ok(url, "phones", "add", "+40722123456", "--tenant", "t1")
    again = cli(url, "phones", "add", "0040 722 123 456", "--tenant", "t1")
    assert again.exit_code == 1
    [line] = again.stderr.splitlines()
    assert "+40722123456 is in the pool already" in line
    assert again.stdout == ""


def test_set_status_by_number_or_id_is_recorded_with_its_reason(url):
    """The change shows in the list and in the log, with the reason and the operator."""
    ok(url, "phones", "add", "+40722123456", "--tenant", "t1")
    result = ok(
        url,
        "phones",
        "set-status",
        "0722123456",
        "paused",
        "--tenant",
        "t1",
        "--reason",
        "ban warning",
    )
    assert "ACTIVE -> PAUSED (ban warning)" in result.stdout
    [row] = listed(url)
    assert (row["status"], row["status_reason"]) == ("PAUSED", "ban warning")
    same = ok(
        url, "phones", "set-status", row["phone_id"], "PAUSED", "--tenant", "t1", "--reason", "x"
    )
    assert "nothing changed" in same.stdout
    exported = ok(url, "events", "export", "--stream", f"phone:{row['phone_id']}").stdout
    events = [msgspec.json.decode(line) for line in exported.splitlines()]
    assert [e["event_type"] for e in events] == ["PhoneRegistered", "PhoneStatusChanged"]
    assert events[1]["data"]["reason"] == "ban warning"
    assert events[1]["data"]["by"].startswith("cli")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["add", "123", "--tenant", "t1"], "country code"),
        (["set-status", "+40799999999", "BANNED", "--tenant", "t1", "--reason", "r"], "not in"),
        (["set-status", "x", "BANNED", "--tenant", "t1", "--reason", "r"], "no phone 'x'"),
        (["set-status", "+40722123456", "BANNED", "--tenant", "t1", "--reason", " "], "why"),
    ],
)
def test_input_errors_exit_1_with_a_clear_line(url, args, message):
    """A bad number, an unknown phone or an empty reason: exit 1, one line naming it."""
    ok(url, "phones", "add", "+40722123456", "--tenant", "t1")
    result = cli(url, "phones", *args)
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"cerniq-outreach phones {args[0]}: ")
    assert message in line


def test_replay_verify_agrees_with_the_phones_read_model(url):
    """The pool's read model is a projection of the log like the others."""
    ok(url, "phones", "add", "+40722123456", "--tenant", "t1")
    ok(url, "phones", "add", "+40722123456", "--tenant", "t2")
    ok(url, "phones", "set-status", "+40722123456", "BANNED", "--tenant", "t2", "--reason", "r")
    assert "phones" in ok(url, "replay", "--verify").stdout
    ok(url, "replay", "--projection", "phones")
    assert [r["status"] for r in listed(url, "t2")] == ["BANNED"]
