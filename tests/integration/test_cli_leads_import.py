"""`leads import` through the CLI, on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import re

import msgspec
import pytest
from click.testing import CliRunner

from cerniq_outreach.application.enrolment import EnrolOutcome, EnrolResult
from cerniq_outreach.entrypoints.cli import leads as leads_cli
from cerniq_outreach.entrypoints.cli import main

import services

CONFIG_PREFIXES = ("CERNIQ_", "TIMELINESAI_", "INSTANTLY_", "RESEND_")
# Where the test services are: kept, as the PostgreSQL server is looked up during the test.
TEST_VARIABLES = ("CERNIQ_TEST_", services.REQUIRE_SERVICES)

MIXED = (
    "company_name;phone;email;lawful_basis_whatsapp;lawful_basis_email;tags;notes\n"
    "Agro Verde SRL;0722 123 456;Ion@AgroVerde.ro;LEGITIMATE_INTEREST;consent;cereale|bio;x\n"
    "Ferma Nord;07x2;;;;;\n"
    "\n"
    "Cereale Sud SA;;office@cereale-sud.ro;;existing customer;;\n"
    ";0744000111;;;;;\n"
    "Vin Bun SRL;+40 722 123 456;;;;;\n"
    "Livada SRL;0745 000 222;;;maybe;;\n"
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """Run each test with none of the developer's own configuration variables."""
    for name in [n for n in os.environ if n.startswith(CONFIG_PREFIXES)]:
        if not name.startswith(TEST_VARIABLES):
            monkeypatch.delenv(name)


def cli(url: str, *args: str, stdin: str | None = None):
    env = {"CERNIQ_DATABASE_URL": url, "CERNIQ_LOG_FORMAT": "json"}
    return CliRunner(env=env).invoke(main, list(args), input=stdin, prog_name="cerniq-outreach")


def ok(url: str, *args: str, stdin: str | None = None):
    result = cli(url, *args, stdin=stdin)
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


@pytest.fixture
def mixed(tmp_path):
    path = tmp_path / "leads.csv"
    path.write_text(MIXED, encoding="utf-8")
    return path


def exported(url: str, tenant: str = "t1") -> list[dict]:
    result = ok(url, "events", "export", "--tenant", tenant)
    return [msgspec.json.decode(line) for line in result.stdout.splitlines()]


def test_a_mixed_file_imports_its_good_rows_and_names_the_bad_ones(url, mixed):
    """Good rows are enrolled; each bad one is FILE:LINE:COLUMN on stderr; the exit is 1."""
    result = cli(url, "leads", "import", str(mixed), "--tenant", "t1")
    assert result.exit_code == 1
    problems = [line for line in result.stderr.splitlines() if line.startswith(str(mixed))]
    assert [re.findall(r":(\d+):(\d+): ", line)[0] for line in problems] == [
        ("1", "7"),
        ("3", "2"),
        ("6", "1"),
        ("7", "2"),
        ("8", "5"),
    ]
    assert problems[0].endswith(": warning: unknown column 'notes' ignored")
    assert "phone '07x2' contains letters" in problems[1]
    assert "company_name is empty" in problems[2]
    assert "+40722123456 is on line 2 already" in problems[3]
    assert "'maybe' is not a lawful basis" in problems[4]
    last = result.stderr.splitlines()[-1]
    assert last.startswith("cerniq-outreach leads import: 4 of 6 rows not imported (4 invalid)")
    assert "the 2 good rows were imported" in last
    assert "enrolled          2" in result.stdout
    assert "invalid           4 (lines 3, 6, 7, 8)" in result.stdout

    events = exported(url)
    assert [e["event_type"] for e in events] == ["LeadEnrolled", "LeadEnrolled"]
    first, second = (e["data"] for e in events)
    assert first["company"]["phone"] == "+40722123456"
    assert first["company"]["email"] == "ion@agroverde.ro"
    assert first["tags"] == ["cereale", "bio"]
    assert [(c["channel_family"], c["basis"], c["evidence"]) for c in first["consents"]] == [
        ("WHATSAPP", "LEGITIMATE_INTEREST", "leads.csv line 2"),
        ("EMAIL", "CONSENT", "leads.csv line 2"),
    ]
    assert second["company"] == {
        "name": "Cereale Sud SA",
        "fiscal_code": None,
        "county": None,
        "phone": None,
        "email": "office@cereale-sud.ro",
        "contact_name": None,
    }
    assert {e["data"]["sequence_id"] for e in events} == {"cold-default"}
    assert exported(url, "t2") == []


def test_importing_the_same_file_again_appends_nothing(url, mixed):
    """Every good row is reported as enrolled already the second time; the log is unchanged."""
    cli(url, "leads", "import", str(mixed), "--tenant", "t1")
    before = exported(url)
    again = cli(url, "leads", "import", str(mixed), "--tenant", "t1", "--json")
    assert again.exit_code == 1
    summary = msgspec.json.decode(again.stdout)
    assert (summary["enrolled"], summary["already_enrolled"], summary["invalid"]) == (0, 2, 4)
    assert exported(url) == before


def test_a_clean_file_exits_0_and_its_json_summary_has_every_count(url, tmp_path):
    """--json prints one object: the counts, the errors, refusals and warnings."""
    path = tmp_path / "good.csv"
    path.write_text(
        "company_name,phone,extra\nAgro,0722123456,a\nFerma,0744000111,b\n", encoding="utf-8"
    )
    args = ("leads", "import", str(path), "--tenant", "t1", "--sequence", "cold-default")
    result = ok(url, *args, "--json")
    assert msgspec.json.decode(result.stdout) == {
        "file": str(path),
        "format": "csv",
        "tenant_id": "t1",
        "sequence_id": "cold-default",
        "dry_run": False,
        "read": 2,
        "valid": 2,
        "enrolled": 2,
        "already_enrolled": 0,
        "refused": 0,
        "invalid": 0,
        "errors": [],
        "refusals": [],
        "warnings": [
            {"line": 1, "column": 3, "field": "extra", "message": "unknown column 'extra' ignored"}
        ],
    }
    assert result.stderr == f"{path}:1:3: warning: unknown column 'extra' ignored\n"
    again = msgspec.json.decode(ok(url, *args, "--json").stdout)
    assert (again["enrolled"], again["already_enrolled"]) == (0, 2)


def test_json_errors_carry_line_column_and_field(url, mixed):
    """Each error of the JSON summary says where it is, as the stderr line does."""
    result = cli(url, "leads", "import", str(mixed), "--tenant", "t1", "--json")
    errors = msgspec.json.decode(result.stdout)["errors"]
    assert [(e["line"], e["column"], e["field"]) for e in errors] == [
        (3, 2, "phone"),
        (6, 1, "company_name"),
        (7, 2, "phone"),
        (8, 5, "lawful_basis_email"),
    ]


def test_jsonl_from_stdin_is_imported(url):
    """FILE `-` reads stdin; JSONL is recognised by its content, errors named by key."""
    stdin = (
        '{"company_name": "Agro", "phone": "0722123456", "tags": ["a"]}\n'
        "\n"
        '{"company_name": "Ferma", "email": "f@ferma.ro", "lawful_basis_email": "CONSENT"}\n'
    )
    result = ok(url, "leads", "import", "-", "--tenant", "t1", stdin=stdin)
    assert "<stdin>: 2 rows read" in result.stdout
    events = exported(url)
    assert [e["data"]["company"]["name"] for e in events] == ["Agro", "Ferma"]
    assert events[1]["data"]["consents"][0]["evidence"] == "<stdin> line 3"

    broken = cli(url, "leads", "import", "-", "--tenant", "t1", stdin='{"company_name": x}\n')
    assert broken.exit_code == 1
    assert broken.stderr.startswith("<stdin>:1:18: invalid JSON: ")


def test_an_unknown_sequence_exits_1_naming_the_known_ones_before_reading(url):
    """An unknown --sequence is one line, with the sequences there are, and nothing read."""
    result = cli(
        url, "leads", "import", "-", "--tenant", "t1", "--sequence", "nope", stdin="junk\n"
    )
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "cerniq-outreach leads import: no sequence 'nope' (known: cold-default, warm-after-reply)"
    ]
    assert result.stdout == ""
    assert exported(url) == []


def test_a_dry_run_reports_and_imports_nothing(url, mixed):
    """--dry-run checks the file, reports the same errors, and appends no event."""
    result = cli(url, "leads", "import", str(mixed), "--tenant", "t1", "--dry-run")
    assert result.exit_code == 1
    assert "valid             2" in result.stdout
    assert "dry run: nothing was imported" in result.stdout
    assert "the 2 good rows would be imported" in result.stderr
    assert f"{mixed}:3:2: phone '07x2'" in result.stderr
    assert exported(url) == []


def test_a_dry_run_needs_no_database(tmp_path, mixed):
    """Checking a file works before any database exists, and creates none."""
    path = tmp_path / "absent.db"
    result = cli(f"sqlite:///{path}", "leads", "import", str(mixed), "--tenant", "t", "--dry-run")
    assert result.exit_code == 1
    assert "invalid           4" in result.stdout
    assert not path.exists()


def test_an_import_into_a_missing_database_says_to_migrate(tmp_path, mixed):
    """Without a migrated database the import stops at once, before reading the file."""
    path = tmp_path / "absent.db"
    result = cli(f"sqlite:///{path}", "leads", "import", str(mixed), "--tenant", "t1")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"cerniq-outreach leads import: no database at {path}: run `cerniq-outreach migrate` first"
    ]


def test_a_header_without_company_name_imports_nothing(url, tmp_path):
    """An unusable header is one error at line 1, and the exit says nothing was imported."""
    path = tmp_path / "leads.csv"
    path.write_text("name,phone\nAgro,0722123456\n", encoding="utf-8")
    result = cli(url, "leads", "import", str(path), "--tenant", "t1")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{path}:1: no company_name column (the header has: name, phone)",
        "cerniq-outreach leads import: nothing could be read; nothing was imported",
    ]
    assert exported(url) == []


@pytest.mark.parametrize("tenant", ["", "  "])
def test_a_blank_tenant_is_a_usage_error(tmp_path, mixed, tenant):
    """--tenant must name a tenant: blank is exit 2."""
    result = cli(
        f"sqlite:///{tmp_path / 'x.db'}", "leads", "import", str(mixed), "--tenant", tenant
    )
    assert result.exit_code == 2
    assert "tenant id is empty" in result.stderr


def test_refused_leads_are_reported_with_their_reasons(tmp_path, monkeypatch):
    """A lead enrolment refuses is named with its line and reason, and the exit is 1."""
    database = f"sqlite:///{tmp_path / 'cerniq.db'}"
    ok(database, "migrate")
    real = leads_cli.open_enrolment

    class Refusing:
        """Enrolment that refuses one company, as a suppression list would."""

        def __init__(self, *args):
            self._real = real(*args)

        def enroll(self, tenant_id, lead, **options):
            if lead.company.name == "Ferma":
                return EnrolResult(
                    lead_id="lead-x", outcome=EnrolOutcome.REFUSED, detail="contact opted out"
                )
            return self._real.enroll(tenant_id, lead, **options)

    monkeypatch.setattr(leads_cli, "open_enrolment", Refusing)
    path = tmp_path / "leads.csv"
    path.write_text("company_name,phone\nAgro,0722123456\nFerma,0744000111\n", encoding="utf-8")
    result = cli(database, "leads", "import", str(path), "--tenant", "t1", "--json")
    assert result.exit_code == 1
    summary = msgspec.json.decode(result.stdout)
    assert (summary["enrolled"], summary["refused"]) == (1, 1)
    assert summary["refusals"] == [{"line": 3, "lead_id": "lead-x", "reason": "contact opted out"}]
    assert result.stderr.splitlines() == [
        f"{path}:3: lead refused: contact opted out",
        (
            "cerniq-outreach leads import: 1 of 2 rows not imported (1 refused); the 1 good row "
            "was imported. Fix the others and import the file again: rows already imported are "
            "skipped"
        ),
    ]
    text = cli(database, "leads", "import", str(path), "--tenant", "t1")
    assert "    line 3: contact opted out" in text.stdout
