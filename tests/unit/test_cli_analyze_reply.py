"""`analyze-reply` reads replies from stdin and writes one JSON reading a line."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from importlib.resources import files

import pytest
from click.testing import CliRunner

from cerniq_outreach.domain.reply_analysis import analyse_reply
from cerniq_outreach.entrypoints.cli import main

CONFIG_PREFIXES = ("CERNIQ_", "TIMELINESAI_", "INSTANTLY_", "RESEND_")
MONDAY = "2026-03-02T10:00:00+02:00"
KEYS = ["label", "score", "confidence", "triggers"]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """Run each test with none of the developer's own configuration variables."""
    for name in [n for n in os.environ if n.startswith(CONFIG_PREFIXES)]:
        monkeypatch.delenv(name)


def run(stdin: str | bytes, *args: str, env: dict[str, str] | None = None):
    return CliRunner(env=env).invoke(
        main, ["analyze-reply", *args], input=stdin, prog_name="cerniq-outreach"
    )


def readings(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines()]


def test_each_line_gives_one_reading_with_the_documented_keys():
    """Plain lines in, one JSON object a line out: label, score, confidence, sorted triggers."""
    result = run("Da, mă interesează. Cât costă?\nSTOP\nNu, mulțumesc.\n")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    out = readings(result.stdout)
    assert [list(r) for r in out] == [KEYS, KEYS, KEYS]
    assert [(r["label"], r["triggers"]) for r in out] == [
        ("positive", ["BUYING_SIGNAL"]),
        ("negative", ["OPT_OUT"]),
        ("negative", []),
    ]
    assert all(-100 <= r["score"] <= 100 and 0 <= r["confidence"] <= 1 for r in out)


def test_the_reading_is_the_domain_analysers():
    """The command adds nothing of its own: its numbers are `analyse_reply`'s."""
    text = "Spam. Vă reclam la ANPC și nu mă mai contactați!"
    [reading] = readings(run(text + "\n", "--received-at", MONDAY).stdout)
    expected = analyse_reply(text, received_at=datetime.fromisoformat(MONDAY))
    assert reading == {
        "label": expected.label.value,
        "score": expected.score,
        "confidence": expected.confidence,
        "triggers": sorted(t.value for t in expected.triggers),
    }
    assert reading["triggers"] == ["COMPLAINT", "OPT_OUT"]


def test_json_lines_and_plain_lines_mix_and_extra_keys_are_ignored():
    """A line starting with `{` is JSON and its "text" is read; any other line is the text."""
    stdin = (
        '{"text": "unsubscribe", "language": "en", "kind": "opt_out"}\n'
        "{not json: a line that starts with a brace is JSON, so this one is bad}\n"
        "Greșit număr\n"
        '  {"text": "{STOP}"}\n'
    )
    result = run(stdin)
    assert [r["triggers"] for r in readings(result.stdout)] == [
        ["OPT_OUT"],
        ["WRONG_PERSON"],
        ["OPT_OUT"],
    ]


def test_an_out_of_office_reply_carries_its_return_moment():
    """The return day at 09:00 local appears as UTC, only on a reply that names one."""
    stdin = "Sunt în concediu, revin pe 15 martie.\nSunt în concediu.\nDa\n"
    out = readings(run(stdin, "--received-at", MONDAY).stdout)
    assert out[0]["out_of_office_until"] == "2026-03-15T07:00:00Z"
    assert out[0]["triggers"] == ["OUT_OF_OFFICE"]
    assert "out_of_office_until" not in out[1]
    assert out[1]["triggers"] == ["OUT_OF_OFFICE"]
    assert "out_of_office_until" not in out[2]


def test_the_zone_defaults_to_the_settings_and_the_option_overrides_it():
    """Days are counted in CERNIQ_TIMEZONE unless --zone names another zone."""
    stdin = "Out of office, back on March 15th\n"
    new_york = {"CERNIQ_TIMEZONE": "America/New_York"}
    from_settings = readings(run(stdin, "--received-at", MONDAY, env=new_york).stdout)
    from_option = readings(run(stdin, "--received-at", MONDAY, "--zone", "Europe/London").stdout)
    assert from_settings[0]["out_of_office_until"] == "2026-03-15T13:00:00Z"  # 09:00 EDT
    assert from_option[0]["out_of_office_until"] == "2026-03-15T09:00:00Z"  # 09:00 GMT


def test_without_received_at_relative_dates_count_from_now():
    """By default a reply arrived now: "back tomorrow" is tomorrow, at 09:00 local."""
    before = datetime.now(UTC)
    [reading] = readings(run("Auto-reply: back tomorrow\n").stdout)
    back = datetime.fromisoformat(reading["out_of_office_until"])
    assert before < back <= before + timedelta(days=2)


def test_a_malformed_json_line_is_reported_with_line_and_column_and_the_rest_is_read():
    """A bad line is named on stderr with its column; later lines are still read; exit 1."""
    stdin = 'Da\n{"text": "STOP",}\n[1] is text: only `{` starts JSON\n{"txt": "Da"}\nNu\n'
    result = run(stdin)
    assert result.exit_code == 1
    assert [r["label"] for r in readings(result.stdout)] == ["positive", "neutral", "negative"]
    errors = result.stderr.splitlines()
    assert errors[0].startswith("cerniq-outreach analyze-reply: line 2, column 17: malformed JSON")
    assert errors[1:] == [
        'cerniq-outreach analyze-reply: line 4: a JSON line must be an object with a string "text"',
        "cerniq-outreach analyze-reply: 2 bad lines skipped",
    ]


def test_a_line_that_is_not_utf8_is_reported_and_skipped():
    """Bytes that are not UTF-8 are an input error on that line, not a crash."""
    result = run(b"Da\nma intereseaz\xe3\nSTOP\n")
    assert result.exit_code == 1
    assert len(readings(result.stdout)) == 2
    assert "line 2, column 14: not UTF-8 text" in result.stderr


@pytest.mark.parametrize("stdin", ["", "\n\n   \n", "\ufeff\n"])
def test_blank_input_writes_nothing(stdin):
    """Blank lines are not replies: nothing is written and the command succeeds."""
    result = run(stdin)
    assert result.exit_code == 0
    assert result.stdout == ""


def test_a_bad_zone_is_a_usage_error():
    """An unknown --zone stops the command before it reads anything (exit 2)."""
    result = run("Da\n", "--zone", "Mars/Olympus_Mons")
    assert result.exit_code == 2
    assert "is not an IANA time zone" in result.stderr
    assert result.stdout == ""


def test_the_shipped_corpus_pipes_in_as_it_is():
    """`analyze-reply < replies.jsonl` reads every line; each opt-out line reads as one."""
    raw = files("cerniq_outreach.data").joinpath("replies.jsonl").read_bytes()
    rows = [json.loads(line) for line in raw.splitlines() if line.strip()]
    result = run(raw, "--received-at", MONDAY)
    assert result.exit_code == 0, result.stderr
    out = readings(result.stdout)
    assert len(out) == len(rows)
    for row, reading in zip(rows, out, strict=True):
        assert ("OPT_OUT" in reading["triggers"]) >= (row["kind"] == "opt_out"), row["text"]
