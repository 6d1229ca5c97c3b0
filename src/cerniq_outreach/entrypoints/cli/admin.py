"""Managing tenants, channels and data subjects (phones: `phones.py`, leads: `leads.py`)."""

from __future__ import annotations

from typing import Final

import click

from cerniq_outreach.entrypoints.cli.base import Group, not_built

TEST_CHANNELS: Final = ("WHATSAPP", "EMAIL_WARM", "EMAIL_COLD")


# --- tenants --------------------------------------------------------------------------------


@click.group(cls=Group)
def tenants() -> None:
    """Manage tenants."""


@tenants.command("create")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help='Print {"tenant_id": ..., "api_key": ...}.')
def tenants_create(name: str, as_json: bool) -> None:
    """Create a tenant and print its id and API key.

    The API key is shown this once only; keep it.
    """
    del name, as_json
    not_built()


# --- channels -------------------------------------------------------------------------------


@click.group(cls=Group)
def channels() -> None:
    """Check and try the configured channel providers."""


@channels.command("check")
def channels_check() -> None:
    """Check each configured provider, one line each.

    Checks that credentials are valid, sending numbers connected and the webhook secret set;
    exits 1 if any check fails.
    """
    not_built()


@channels.command("send-test")
@click.option(
    "--channel",
    type=click.Choice(TEST_CHANNELS, case_sensitive=False),
    required=True,
    help="Channel to send on.",
)
@click.option("--to", "to", metavar="ADDRESS", required=True, help="Recipient phone or email.")
@click.option("--from-phone", metavar="P", help="Sending WhatsApp number (WHATSAPP only).")
@click.option("--campaign", metavar="ID", help="Instantly campaign id (EMAIL_COLD only).")
@click.option("--text", metavar="T", help="Message text (default: a short test message).")
def channels_send_test(
    channel: str, to: str, from_phone: str | None, campaign: str | None, text: str | None
) -> None:
    """Send one test message and print the provider's id.

    Goes through the channel's configured provider, or its sandbox when no key is set.
    """
    del channel, to, from_phone, campaign, text
    not_built()


# --- gdpr -----------------------------------------------------------------------------------


@click.group(cls=Group)
def gdpr() -> None:
    """Data-subject access and erasure."""


@gdpr.command("export", exactly_one_of=("email", "phone"))
@click.option("--email", metavar="E", help="The data subject's email address.")
@click.option("--phone", metavar="P", help="The data subject's phone number.")
def gdpr_export(email: str | None, phone: str | None) -> None:
    """Export everything held about one person."""
    del email, phone
    not_built()


@gdpr.command("erase", exactly_one_of=("email", "phone"))
@click.option("--email", metavar="E", help="The data subject's email address.")
@click.option("--phone", metavar="P", help="The data subject's phone number.")
def gdpr_erase(email: str | None, phone: str | None) -> None:
    """Erase one person's personal data.

    Their per-lead keys are destroyed and the read models scrubbed; the audit trail keeps its
    shape (who was contacted when, not who they were).
    """
    del email, phone
    not_built()


COMMANDS: Final = (tenants, channels, gdpr)
