"""The command line offers every documented command and never pretends to run an unbuilt one."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from cerniq_outreach import __version__
from cerniq_outreach.entrypoints.cli import NOT_BUILT, main

# interfaces.md, "Command line": each command with every documented option and argument.
DOCUMENTED = {
    "serve": "--host 0.0.0.0 --port 8080 --embedded --demo",
    "worker": "",
    "scheduler": "",
    "migrate": "",
    "tenants create": "'Agro Verde' --json",
    "phones add": "+40722123456 --tenant t1 --label L --account-id a1 --daily-limit 150"
    " --warmup-start today --json",
    "phones set-status": "+40722123456 PAUSED --tenant t1 --reason 'ban warning' --json",
    "phones list": "--tenant t1 --json",
    "channels check": "",
    "channels send-test": "--channel WHATSAPP --to +40722123456 --from-phone +40744000111"
    " --campaign c1 --text 'Bună ziua'",
    "leads import": "{file} --tenant t1 --sequence cold-default",
    "demo": "--phones 20 --leads 1000 --days 5 --seed 7 --json"
    " --database-url sqlite:///./var/demo.db --reset",
    "events export": "--tenant t1 --stream lead-1 --from-position 10"
    " --until 2026-03-02T18:00:00+02:00 --redact",
    "replay": "--tenant t1 --projection leads --verify",
    "audit lead": "lead-1 --format json",
    "analyze-reply": "",
    "gdpr export": "--email ion@agroverde.ro",
    "gdpr erase": "--phone +40722123456",
}
ISSUES = {
    "tenants create": 8, "gdpr export": 9, "gdpr erase": 9,
}  # fmt: skip
CONFIG_PREFIXES = ("CERNIQ_", "TIMELINESAI_", "INSTANTLY_", "RESEND_")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """Run each test with none of the developer's own configuration variables."""
    for name in [n for n in os.environ if n.startswith(CONFIG_PREFIXES)]:
        monkeypatch.delenv(name)


@pytest.fixture
def invoke(tmp_path):
    leads = tmp_path / "leads.csv"
    leads.write_text("company_name,phone\nAgro Verde SRL,0722123456\n", encoding="utf-8")

    def run(args, env=None):
        args = [a.replace("{file}", str(leads)) for a in args]
        return CliRunner(env=env).invoke(main, args, prog_name="cerniq-outreach")

    return run


def test_help_lists_every_documented_command(invoke):
    """`--help` of the program and of each group names every command of the contract."""
    groups: dict[str, set[str]] = {}
    for path in DOCUMENTED:
        first, _, rest = path.partition(" ")
        groups.setdefault(first, set())
        if rest:
            groups[first].add(rest)
    top = invoke(["--help"])
    assert top.exit_code == 0
    for name, subcommands in groups.items():
        assert re.search(rf"^\s+{re.escape(name)}\s+\S", top.output, re.MULTILINE), name
        if subcommands:
            sub = invoke([name, "--help"])
            assert sub.exit_code == 0
            for subcommand in subcommands:
                assert re.search(rf"^\s+{subcommand}\s+\S", sub.output, re.MULTILINE), subcommand


@pytest.mark.parametrize("path", DOCUMENTED)
def test_every_command_has_its_own_help(invoke, path):
    """Each command explains itself, and lists the options the contract gives it."""
    result = invoke([*path.split(), "--help"])
    assert result.exit_code == 0
    assert "Usage: cerniq-outreach " + path in result.output
    for option in (a for a in shlex.split(DOCUMENTED[path]) if a.startswith("--")):
        assert option in result.output


# Built with issues 3 to 7; exercised against real databases, the broker and the provider
# emulator in tests/integration/ and tests/e2e/.
BUILT = (
    "serve",
    "worker",
    "scheduler",
    "demo",
    "leads import",
    "analyze-reply",
    "migrate",
    "events export",
    "replay",
    "audit lead",
    "phones add",
    "phones set-status",
    "phones list",
    "channels check",
    "channels send-test",
)


@pytest.mark.parametrize("path", [p for p in DOCUMENTED if p not in BUILT])
def test_an_unbuilt_command_says_so_and_exits_2(invoke, path):
    """With its documented options parsed, an unbuilt command names its issue and exits 2."""
    result = invoke([*path.split(), *shlex.split(DOCUMENTED[path])])
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert re.fullmatch(
        rf"cerniq-outreach {path}: not built yet \(arrives with issue #{ISSUES[path]}: .+\)",
        lines[0],
    )


def test_every_documented_command_is_built_or_listed_as_not_built():
    """A documented command either runs or says which issue brings it; never both."""
    assert set(DOCUMENTED) == set(BUILT) | set(NOT_BUILT)
    assert not set(BUILT) & set(NOT_BUILT)


LOG_READERS = [
    ["events", "export"],
    ["audit", "lead", "lead-1"],
    ["replay", "--verify"],
    ["phones", "list", "--tenant", "t1"],
    ["phones", "add", "+40722123456", "--tenant", "t1"],
    ["leads", "import", "{file}", "--tenant", "t1"],
]


@pytest.mark.parametrize("args", LOG_READERS, ids=" ".join)
def test_a_log_command_on_a_missing_database_says_to_migrate(invoke, tmp_path, args):
    """Reading a SQLite file that does not exist fails with exit 1 and creates no file."""
    path = tmp_path / "absent.db"
    result = invoke(args, env={"CERNIQ_DATABASE_URL": f"sqlite:///{path}"})
    assert result.exit_code == 1
    assert "run `cerniq-outreach migrate` first" in result.stderr
    assert result.stdout == ""
    assert not path.exists()


def test_the_not_built_table_names_only_real_commands():
    """Every entry of NOT_BUILT resolves to a command, so removing one is the only step left."""
    assert set(NOT_BUILT) == set(ISSUES)
    for path in NOT_BUILT:
        command = main
        for word in path.split():
            assert isinstance(command, click.Group), path
            command = command.get_command(click.Context(command), word)
            assert command is not None, path
        assert not isinstance(command, click.Group), path


@pytest.mark.parametrize(
    "args",
    [
        ["no-such-command"],
        ["serve", "--port", "eighty"],
        ["serve", "--port", "0"],
        ["serve", "--bogus"],
        ["tenants", "create"],
        ["phones", "set-status", "+40722123456", "SLEEPING", "--tenant", "t1", "--reason", "r"],
        ["phones", "set-status", "+40722123456", "PAUSED", "--tenant", "t1"],
        ["phones", "add", "+40722123456", "--tenant", "t1", "--daily-limit", "201"],
        ["phones", "add", "+40722123456", "--tenant", "t1", "--warmup-start", "soon"],
        ["phones", "list"],
        ["channels", "send-test", "--channel", "SMS", "--to", "x"],
        ["channels", "send-test", "--channel", "WHATSAPP"],
        ["leads", "import", "/no/such/file.csv", "--tenant", "t1"],
        ["demo", "--phones", "0"],
        ["demo", "--database-url", "mysql://localhost/x"],
        ["events", "export", "--until", "yesterday"],
        ["events", "export", "--from-position", "-1"],
        ["audit", "lead", "lead-1", "--format", "xml"],
        ["gdpr", "export"],
        ["gdpr", "erase", "--email", "a@b.ro", "--phone", "+40722123456"],
    ],
    ids=" ".join,
)
def test_a_usage_error_exits_2_with_a_message(invoke, args):
    """Wrong or missing options are usage errors: exit 2, an explanation on stderr."""
    result = invoke(args)
    assert result.exit_code == 2
    assert "Error:" in result.stderr
    assert "not built yet" not in result.stderr


@pytest.mark.parametrize("path", ["migrate", "phones list", "gdpr erase"])
def test_bad_configuration_exits_1_naming_the_variable(invoke, path):
    """A wrong variable stops any command with exit 1 and one line that names it."""
    args = [*path.split(), *shlex.split(DOCUMENTED[path])]
    result = invoke(args, env={"CERNIQ_TIMEZONE": "Mars/Olympus_Mons"})
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        (
            "cerniq-outreach: configuration error: CERNIQ_TIMEZONE='Mars/Olympus_Mons' is not an "
            "IANA time zone (e.g. Europe/Bucharest)"
        )
    ]


def test_bad_configuration_never_echoes_a_secret(invoke):
    """The configuration error names a malformed key but does not print it."""
    result = invoke(["worker"], env={"RESEND_API_KEY": "re_Hunter2 oops"})
    assert result.exit_code == 1
    assert "RESEND_API_KEY" in result.stderr
    assert "Hunter2" not in result.output


@pytest.mark.parametrize("args", [["--help"], ["serve", "--help"], ["gdpr", "erase", "--help"]])
def test_help_works_whatever_the_configuration(invoke, args):
    """Help is reachable even when the environment is wrong, to find out how to fix it."""
    result = invoke(args, env={"CERNIQ_DATABASE_URL": "mysql://nope"})
    assert result.exit_code == 0
    assert "Usage:" in result.output


def test_version_is_the_package_version(invoke):
    """`--version` prints the program name and the installed version."""
    result = invoke(["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"cerniq-outreach {__version__}"


def test_python_dash_m_runs_the_same_command_line():
    """`python -m cerniq_outreach` is the CLI too, under its real name."""
    completed = subprocess.run(
        [sys.executable, "-m", "cerniq_outreach", "worker"],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "", "PYTHONPATH": ""},
        timeout=60,
    )
    assert completed.returncode == 1
    assert completed.stderr.startswith("cerniq-outreach worker: worker needs CERNIQ_BROKER_URL")
