"""`channels check | send-test`: are the providers reachable, and does a message go out?

Each channel is live when its provider's API key is set and the sandbox otherwise
(`bootstrap.open_channels`). The sandbox's simulated webhooks are dropped here: these are
one-off commands and nothing is recorded in the event log.

`channels check` prints one line per provider and exits 1 when a live provider fails a check
(credentials refused, provider unreachable, a sending number not connected, no webhook
secret). `channels send-test` sends one message and prints the provider's id for it.
"""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from typing import TYPE_CHECKING, Final

import click
import msgspec

from cerniq_outreach.adapters.channels.instantly import InstantlyChannel
from cerniq_outreach.adapters.channels.resend import ResendChannel
from cerniq_outreach.adapters.channels.sandbox_instantly import SandboxColdEmail
from cerniq_outreach.adapters.channels.timelinesai import TimelinesAiChannel
from cerniq_outreach.application.channels import ChannelError, ColdLead, WarmEmail
from cerniq_outreach.bootstrap import Channels, bootstrap, open_channels, open_rate_limiter
from cerniq_outreach.domain.contacts import InvalidContact, normalize_email, normalize_phone
from cerniq_outreach.entrypoints.cli.base import Group, fail, settings

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from cerniq_outreach.settings import ProviderSettings

CHANNELS: Final = ("WHATSAPP", "EMAIL_WARM", "EMAIL_COLD")
PROVIDERS: Final = ("timelinesai", "instantly", "resend")
# *Unconfirmed*: TimelinesAI's account statuses beyond `active`; these count as connected.
CONNECTED: Final = frozenset({"active", "connected", "online"})
DEFAULT_TEXT: Final = "Cerniq Outreach: test message (channels send-test)"
# Resend's own test sender: any account may send from it (to the account owner's address);
# a real domain needs `--from` with an address on a domain verified in Resend.
DEFAULT_SENDER: Final = "Cerniq <onboarding@resend.dev>"
# The one-click unsubscribe link every warm email must carry; a test email links nowhere real.
TEST_UNSUBSCRIBE_URL: Final = "https://localhost/unsubscribe/send-test"
_json = msgspec.json.Encoder()


@contextmanager
def opened_channels() -> Iterator[Channels]:
    """The configured channels for one command, closed (with the rate limiter) after it."""
    loaded = settings()
    rate_limiter = open_rate_limiter(loaded)
    channels = open_channels(loaded, rate_limiter, bootstrap(loaded).clock)
    try:
        yield channels
    finally:
        channels.close()
        close = getattr(rate_limiter, "close", None)
        if close is not None:
            close()


@click.group(cls=Group)
def channels() -> None:
    """Check the channel providers and send test messages."""


@channels.command("check")
def channels_check() -> None:
    """Check each provider: credentials, sending numbers, webhook secret.

    One line per provider. Exit 1 when a live provider fails any check; a provider without
    an API key runs in the sandbox and is not checked against the network.
    """
    loaded = settings()
    failed = False
    with opened_channels() as opened:
        for name in PROVIDERS:
            provider = loaded.provider(name)
            if provider.live:
                ok, checks = _check_live(provider, opened)
            else:
                ok, checks = True, ["sandbox (no API key): nothing sent to the provider"]
                checks.append(_secret_check(provider)[1])
            failed = failed or not ok
            mode = "live" if provider.live else "sandbox"
            click.echo(f"{name:<12} {mode:<8} {'ok' if ok else 'FAIL':<4}  {'; '.join(checks)}")
    if failed:
        click.get_current_context().exit(1)


def _check_live(provider: ProviderSettings, opened: Channels) -> tuple[bool, list[str]]:
    """Run one live provider's checks: (all passed, one phrase per check)."""
    checks: list[str] = []
    ok = True
    try:
        if isinstance(opened.whatsapp, TimelinesAiChannel) and provider.name == "timelinesai":
            accounts = opened.whatsapp.accounts()
            checks.append("credentials valid")
            down = [a.phone for a in accounts if a.status.lower() not in CONNECTED]
            if not accounts:
                ok = False
                checks.append("no sending numbers linked")
            elif down:
                ok = False
                checks.append(
                    f"{len(down)} of {len(accounts)} numbers not connected: " + ", ".join(down)
                )
            else:
                checks.append(f"{len(accounts)} sending numbers connected")
        elif isinstance(opened.cold_email, InstantlyChannel) and provider.name == "instantly":
            opened.cold_email.verify_credentials()
            checks.append("credentials valid (campaigns readable)")
        elif isinstance(opened.warm_email, ResendChannel) and provider.name == "resend":
            opened.warm_email.verify_credentials()
            checks.append("credentials valid (domains readable)")
    except ChannelError as exc:
        ok = False
        checks.append(f"{type(exc).__name__}: {exc.detail}")
    secret_ok, phrase = _secret_check(provider)
    checks.append(phrase)
    return ok and secret_ok, checks


def _secret_check(provider: ProviderSettings) -> tuple[bool, str]:
    if provider.webhook_secret is not None:
        return True, "webhook secret set"
    variable = f"{provider.name.upper()}_WEBHOOK_SECRET"
    return False, f"webhook secret missing ({variable})"


@channels.command("send-test")
@click.option(
    "--channel",
    type=click.Choice(CHANNELS, case_sensitive=False),
    required=True,
    help="The channel to send through.",
)
@click.option("--to", "to", metavar="ADDRESS", required=True, help="Phone (E.164) or email.")
@click.option("--from-phone", metavar="P", help="WHATSAPP: the pool number that sends.")
@click.option("--campaign", metavar="ID", help="EMAIL_COLD: the Instantly campaign id.")
@click.option("--text", metavar="T", default=DEFAULT_TEXT, help="The message text.")
@click.option(
    "--from",
    "sender",
    metavar="SENDER",
    default=DEFAULT_SENDER,
    help="EMAIL_WARM: the sender, on a domain verified in Resend.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def channels_send_test(  # click passes every parameter by name
    *,
    channel: str,
    to: str,
    from_phone: str | None,
    campaign: str | None,
    text: str,
    sender: str,
    as_json: bool,
) -> None:
    """Send one test message through the configured provider (the sandbox without a key).

    WHATSAPP needs --from-phone, EMAIL_COLD needs --campaign (the lead is added to that
    campaign, which then emails it on its schedule). Prints the provider's id for the message.
    """
    channel = channel.upper()
    ctx = click.get_current_context()
    if channel == "WHATSAPP" and from_phone is None:
        raise click.UsageError("--channel WHATSAPP needs --from-phone", ctx)
    if channel == "EMAIL_COLD" and campaign is None:
        raise click.UsageError("--channel EMAIL_COLD needs --campaign", ctx)
    if not text.strip():
        fail("--text: the message is empty")
    with opened_channels() as opened:
        try:
            external_id = _send(
                opened,
                channel,
                to=to,
                from_phone=from_phone,
                campaign=campaign,
                text=text,
                sender=sender,
            )
        except ChannelError as exc:
            fail(f"{type(exc).__name__}: {exc}")
    provider = settings().provider(channel)
    name = provider.name if provider.live else "sandbox"
    if as_json:
        record = {"channel": channel, "provider": name, "external_id": external_id}
        click.echo(_json.encode(record))
    else:
        click.echo(external_id)


def _send(  # the command's options, checked per channel
    opened: Channels,
    channel: str,
    *,
    to: str,
    from_phone: str | None,
    campaign: str | None,
    text: str,
    sender: str,
) -> str:
    """Send through `channel`; the provider's id for the message (or for the cold lead)."""
    if channel == "WHATSAPP":
        recipient = _valid("--to", normalize_phone, to)
        sending = _valid("--from-phone", normalize_phone, from_phone or "")
        return opened.whatsapp.send_to_phone(
            from_phone=sending, to_phone=recipient, text=text
        ).external_id
    address = _valid("--to", normalize_email, to)
    if channel == "EMAIL_WARM":
        email = WarmEmail(
            tenant_id="cli",
            lead_id="send-test",
            message_id=f"send-test-{uuid.uuid4()}",  # a new message each run, never deduplicated
            sender=sender,
            to=address,
            subject="Cerniq Outreach test",
            text=text,
            unsubscribe_url=TEST_UNSUBSCRIBE_URL,
        )
        return opened.warm_email.send(email).external_id
    campaign_id = campaign or ""
    added = opened.cold_email.add_leads(
        campaign_id, [ColdLead(email=address, personalization=text)]
    )
    if added.uploaded != 1:
        fail(
            f"the campaign did not take the lead (in block list: {added.in_blocklist}, "
            f"duplicate: {added.duplicates}, skipped: {added.skipped})"
        )
    cold = opened.cold_email
    lead_id = None
    if isinstance(cold, InstantlyChannel | SandboxColdEmail):
        lead_id = cold.lead_id(campaign_id, address)
    if lead_id is None:
        fail("the lead was added but the provider did not list it")
    return lead_id


def _valid(option: str, normalize: Callable[[str], str], value: str) -> str:
    """`value` normalised, or exit 1 with one line naming `option`."""
    try:
        return normalize(value)
    except InvalidContact as exc:
        fail(f"{option}: {exc}")


COMMANDS: Final = (channels,)
