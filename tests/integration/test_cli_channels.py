"""`channels check | send-test` through the CLI, against the provider emulator over HTTP."""

from __future__ import annotations

import os

import msgspec
import pytest
from click.testing import CliRunner

from cerniq_outreach.entrypoints.cli import main

import services

CONFIG_PREFIXES = ("CERNIQ_", "TIMELINESAI_", "INSTANTLY_", "RESEND_")
TEST_VARIABLES = ("CERNIQ_TEST_", services.REQUIRE_SERVICES)
PROVIDERS = ("timelinesai", "instantly", "resend")
SECRETS = {
    "timelinesai": "tl-hook-secret-123",
    "instantly": "inst-hook-secret-456",
    "resend": "whsec_c2VjcmV0LWtleS1mb3ItdGVzdHM=",
}
PREFIX = "cerniq-outreach channels"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """Run each test with none of the developer's own configuration variables."""
    for name in [n for n in os.environ if n.startswith(CONFIG_PREFIXES)]:
        if not name.startswith(TEST_VARIABLES):
            monkeypatch.delenv(name)


def live_env(emulator, providers=PROVIDERS, *, secrets=PROVIDERS):
    """Variables making `providers` live on the emulator, with webhook secrets for `secrets`."""
    env = {"CERNIQ_LOG_FORMAT": "json", "CERNIQ_LOG_LEVEL": "WARNING"}
    for name in providers:
        prefix = name.upper()
        env[f"{prefix}_API_KEY"] = emulator.control.api_keys[name]
        env[f"{prefix}_BASE_URL"] = f"{emulator.url}/{name}"
    for name in secrets:
        env[f"{name.upper()}_WEBHOOK_SECRET"] = SECRETS[name]
    return env


def cli(env, *args):
    return CliRunner(env=env).invoke(
        main, ["--log-level", "ERROR", "channels", *args], prog_name="cerniq-outreach"
    )


def lines_by_provider(stdout: str) -> dict[str, str]:
    return {line.split()[0]: line for line in stdout.splitlines()}


def errors(result) -> list[str]:
    """The command's own error lines on stderr (log lines are JSON objects)."""
    return [line for line in result.stderr.splitlines() if line.startswith(PREFIX)]


# --- channels check ---------------------------------------------------------------------------


def test_check_passes_with_every_provider_live_and_healthy(emulator):
    """Keys accepted, the number connected, secrets set: one ok line per provider, exit 0."""
    result = cli(live_env(emulator), "check")
    assert result.exit_code == 0, result.output
    lines = lines_by_provider(result.stdout)
    assert set(lines) == set(PROVIDERS)
    for line in lines.values():
        assert line.split()[1:3] == ["live", "ok"]
        assert "credentials valid" in line
        assert "webhook secret set" in line
    assert "1 sending numbers connected" in lines["timelinesai"]
    assert emulator.control.requests("timelinesai", "/whatsapp_accounts")
    assert emulator.control.requests("instantly", "/api/v2/campaigns")
    assert emulator.control.requests("resend", "/domains")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_check_fails_when_a_provider_refuses_the_key(emulator, provider):
    """A refused key fails that provider's line with the auth error, and the command exits 1."""
    emulator.control.revoke(provider)
    result = cli(live_env(emulator), "check")
    assert result.exit_code == 1
    lines = lines_by_provider(result.stdout)
    assert lines[provider].split()[1:3] == ["live", "FAIL"]
    assert "ProviderAuthError" in lines[provider]
    for other in set(PROVIDERS) - {provider}:
        assert lines[other].split()[2] == "ok"


def test_check_fails_when_a_sending_number_is_disconnected(emulator):
    """A linked number that is not connected is named, and the command exits 1."""
    emulator.control.whatsapp_accounts["+40744000111"] = "disconnected"
    result = cli(live_env(emulator), "check")
    assert result.exit_code == 1
    line = lines_by_provider(result.stdout)["timelinesai"]
    assert "FAIL" in line
    assert "1 of 2 numbers not connected: +40744000111" in line


def test_check_fails_when_no_sending_number_is_linked(emulator):
    """A live workspace without numbers cannot send WhatsApp: that fails the check."""
    emulator.control.whatsapp_accounts.clear()
    result = cli(live_env(emulator), "check")
    assert result.exit_code == 1
    assert "no sending numbers linked" in lines_by_provider(result.stdout)["timelinesai"]


def test_check_fails_when_a_live_provider_has_no_webhook_secret(emulator):
    """A live provider whose webhooks could not be verified fails, naming the variable."""
    env = live_env(emulator, secrets=("timelinesai", "instantly"))
    result = cli(env, "check")
    assert result.exit_code == 1
    line = lines_by_provider(result.stdout)["resend"]
    assert "FAIL" in line
    assert "webhook secret missing (RESEND_WEBHOOK_SECRET)" in line


def test_check_fails_when_a_provider_cannot_be_reached(emulator):
    """A base URL nobody answers at is a failed check, not a traceback."""
    env = live_env(emulator, ("instantly",), secrets=("instantly",))
    env["INSTANTLY_BASE_URL"] = "http://127.0.0.1:9/instantly"  # the discard port: refused
    result = cli(env, "check")
    assert result.exit_code == 1
    assert "TransientProviderError" in lines_by_provider(result.stdout)["instantly"]
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_check_without_keys_reports_the_sandbox_and_exits_0(emulator):
    """No keys: every provider is the sandbox, the network is left alone, exit 0."""
    result = cli({"CERNIQ_LOG_FORMAT": "json", "RESEND_WEBHOOK_SECRET": SECRETS["resend"]}, "check")
    assert result.exit_code == 0, result.output
    lines = lines_by_provider(result.stdout)
    assert set(lines) == set(PROVIDERS)
    for name, line in lines.items():
        assert line.split()[1:3] == ["sandbox", "ok"]
        expected = "webhook secret set" if name == "resend" else "webhook secret missing"
        assert expected in line
    assert emulator.control.recorded == []


# --- channels send-test -----------------------------------------------------------------------


def test_send_test_whatsapp_prints_the_providers_message_id(emulator):
    """The number is normalised to E.164, sent from the given pool number, its uid printed."""
    args = ["--channel", "WHATSAPP", "--to", "0733 000 111", "--from-phone", "0722123456"]
    result = cli(live_env(emulator), "send-test", *args, "--text", "Bună ziua")
    assert result.exit_code == 0, result.output
    [sent] = emulator.control.whatsapp_sent
    assert sent == {
        "phone": "+40733000111",
        "whatsapp_account_phone": "+40722123456",
        "text": "Bună ziua",
    }
    assert result.stdout.strip() in emulator.control.whatsapp_messages


def test_send_test_warm_email_prints_the_providers_email_id_as_json(emulator):
    """With --json: the channel, the provider and Resend's id for the email."""
    args = ["--channel", "email_warm", "--to", "ion@ferma.ro", "--from", "Cerniq <a@cerniq.ro>"]
    result = cli(live_env(emulator), "send-test", *args, "--json")
    assert result.exit_code == 0, result.output
    [email] = emulator.control.emails_sent
    assert (email["to"], email["from"]) == (["ion@ferma.ro"], "Cerniq <a@cerniq.ro>")
    assert msgspec.json.decode(result.stdout) == {
        "channel": "EMAIL_WARM",
        "provider": "resend",
        "external_id": email["id"],
    }


def test_send_test_cold_email_adds_the_lead_and_prints_its_instantly_id(emulator):
    """The address goes into the campaign; Instantly's id for that lead is printed."""
    args = ["--channel", "EMAIL_COLD", "--to", "Maria@Agro.ro", "--campaign", "camp-1"]
    result = cli(live_env(emulator), "send-test", *args)
    assert result.exit_code == 0, result.output
    [(lead_id, lead)] = emulator.control.leads.items()
    assert (lead["campaign"], lead["email"]) == ("camp-1", "maria@agro.ro")
    assert result.stdout.strip() == lead_id


@pytest.mark.parametrize(
    "args",
    [
        ["--channel", "WHATSAPP", "--to", "+40733000111", "--from-phone", "+40722123456"],
        ["--channel", "EMAIL_WARM", "--to", "ion@ferma.ro"],
        ["--channel", "EMAIL_COLD", "--to", "ion@ferma.ro", "--campaign", "camp-1"],
    ],
    ids=lambda args: args[1],
)
def test_send_test_without_keys_goes_to_the_sandbox_and_prints_an_id(emulator, args):
    """No key: the sandbox answers with its own id, and nothing reaches the network."""
    result = cli({"CERNIQ_LOG_FORMAT": "json"}, "send-test", *args, "--json")
    assert result.exit_code == 0, result.output
    printed = msgspec.json.decode(result.stdout)
    assert (printed["channel"], printed["provider"]) == (args[1], "sandbox")
    assert printed["external_id"]
    assert emulator.control.recorded == []


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--channel", "WHATSAPP", "--to", "not a phone", "--from-phone", "+40722123456"], "--to"),
        (["--channel", "WHATSAPP", "--to", "+40733000111", "--from-phone", "12"], "--from-phone"),
        (["--channel", "EMAIL_WARM", "--to", "ion-at-ferma.ro"], "--to"),
        (["--channel", "EMAIL_COLD", "--to", "ion@@x", "--campaign", "c"], "--to"),
    ],
)
def test_send_test_bad_input_exits_1_with_one_line_naming_the_option(emulator, args, option):
    """A recipient or sender that is not a phone or an address: exit 1, nothing sent."""
    result = cli(live_env(emulator), "send-test", *args)
    assert result.exit_code == 1
    [line] = errors(result)
    assert line.startswith(f"{PREFIX} send-test: {option}: ")
    assert result.stdout == ""
    assert emulator.control.recorded == []


@pytest.mark.parametrize(
    "args",
    [
        ["--channel", "WHATSAPP", "--to", "+40733000111"],
        ["--channel", "EMAIL_COLD", "--to", "ion@ferma.ro"],
    ],
)
def test_send_test_without_the_channels_required_option_is_a_usage_error(emulator, args):
    """WHATSAPP without --from-phone, EMAIL_COLD without --campaign: exit 2, named."""
    result = cli(live_env(emulator), "send-test", *args)
    assert result.exit_code == 2
    assert "needs --" in result.stderr
    assert emulator.control.recorded == []


def test_send_test_provider_error_exits_1_with_the_error_class_not_a_traceback(emulator):
    """A refused key ends the command with one line naming the error class and provider."""
    emulator.control.revoke("resend")
    result = cli(live_env(emulator), "send-test", "--channel", "EMAIL_WARM", "--to", "a@ferma.ro")
    assert result.exit_code == 1
    [line] = errors(result)
    assert line.startswith(f"{PREFIX} send-test: ProviderAuthError: resend: ")
    assert "Traceback" not in result.output
