"""The `cerniq-outreach` command line.

Every command validates the configuration (`Settings.from_env`) after its own options are parsed
and before it runs, so `--help` works whatever the environment holds and a bad variable stops
the command with exit code 1 and one line naming it. Exit codes: 0 success, 1 domain, input or
configuration error, 2 usage error (and, for now, a command that is not built yet).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NoReturn

import click

from cerniq_outreach import __version__
from cerniq_outreach.observability import configure_logging
from cerniq_outreach.settings import Settings, SettingsError, check_database_url

if TYPE_CHECKING:
    from collections.abc import Sequence

PROG: Final = "cerniq-outreach"

# Commands whose implementation arrives with a later issue: (issue number, issue title). When a
# command becomes real, delete its entry here and replace the `not_built()` call in its body.
NOT_BUILT: Final[dict[str, tuple[int, str]]] = {
    "serve": (6, "the outreach engine"),
    "worker": (6, "the outreach engine"),
    "scheduler": (6, "the outreach engine"),
    "demo": (6, "the outreach engine"),
    "leads import": (6, "the outreach engine"),
    "migrate": (3, "event store"),
    "events export": (3, "event store"),
    "replay": (3, "event store"),
    "audit lead": (3, "event store"),
    "phones add": (4, "quota guardian and phone pool"),
    "phones set-status": (4, "quota guardian and phone pool"),
    "phones list": (4, "quota guardian and phone pool"),
    "channels check": (5, "channel providers"),
    "channels send-test": (5, "channel providers"),
    "analyze-reply": (7, "reply understanding"),
    "tenants create": (8, "HTTP API"),
    "gdpr export": (9, "consent and erasure"),
    "gdpr erase": (9, "consent and erasure"),
}

PHONE_STATUSES: Final = ("ACTIVE", "PAUSED", "OFFLINE", "BANNED", "RECONNECTING", "QUARANTINE")
TEST_CHANNELS: Final = ("WHATSAPP", "EMAIL_WARM", "EMAIL_COLD")
LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")

CONTEXT_SETTINGS: Final[dict[str, Any]] = {
    "help_option_names": ["-h", "--help"],
    "max_content_width": 100,
    "show_default": True,
}


def command_path(ctx: click.Context) -> str:
    """The command's words without the program name, e.g. `phones add`."""
    names: list[str] = []
    while ctx.parent is not None:
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    return " ".join(reversed(names))


def not_built() -> NoReturn:
    """Say which issue brings the current command, then exit 2; never pretend to run it."""
    ctx = click.get_current_context()
    path = command_path(ctx)
    issue, title = NOT_BUILT[path]
    click.echo(f"{PROG} {path}: not built yet (arrives with issue #{issue}: {title})", err=True)
    ctx.exit(2)


class Command(click.Command):
    """A command that loads the settings before it runs and can require exactly one option."""

    def __init__(self, *args: Any, exactly_one_of: Sequence[str] = (), **kwargs: Any) -> None:  # noqa: ANN401  # passed through to click
        super().__init__(*args, **kwargs)
        self.exactly_one_of = tuple(exactly_one_of)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Parse as usual, then enforce `exactly_one_of` as a usage error (exit 2)."""
        rest = super().parse_args(ctx, args)
        if self.exactly_one_of:
            given = [name for name in self.exactly_one_of if ctx.params.get(name) is not None]
            if len(given) != 1:
                options = " or ".join(f"--{name.replace('_', '-')}" for name in self.exactly_one_of)
                raise click.UsageError(f"give exactly one of {options}", ctx)
        return rest

    def invoke(self, ctx: click.Context) -> Any:  # noqa: ANN401  # whatever the callback returns
        """Validate the configuration, configure logging, then run the command."""
        try:
            settings = Settings.from_env(os.environ)
        except SettingsError as exc:
            click.echo(f"{PROG}: configuration error: {exc}", err=True)
            ctx.exit(1)
        ctx.obj = settings
        configure_logging(settings.log_format, ctx.find_root().params.get("log_level", "INFO"))
        return super().invoke(ctx)


class Group(click.Group):
    """A group whose commands and subgroups load the settings before they run."""

    command_class = Command
    group_class = type  # subgroups are of this same class


class AwareDateTime(click.ParamType[datetime]):
    """An ISO 8601 date-time; without an offset it is read as UTC."""

    name = "TIME"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        """Parse `value` into a timezone-aware datetime."""
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        try:
            parsed = datetime.fromisoformat(str(value))
        except ValueError:
            self.fail(
                f"{value!r} is not an ISO 8601 time such as 2026-03-02T10:00:00+02:00", param, ctx
            )
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _database_url_option(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> str | None:
    """Validate `--database-url` like `CERNIQ_DATABASE_URL`, as a usage error."""
    del ctx
    if value is None:
        return None
    try:
        return check_database_url(value, name=f"--{(param.name or '').replace('_', '-')}")
    except SettingsError as exc:
        raise click.BadParameter(str(exc).removeprefix("--database-url ")) from None


tenant_option = click.option("--tenant", metavar="T", required=True, help="Tenant id or name.")


@click.group(cls=Group, context_settings=CONTEXT_SETTINGS)
@click.version_option(
    __version__, "-V", "--version", prog_name=PROG, message="%(prog)s %(version)s"
)
@click.option(
    "--log-level",
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    default="INFO",
    help="Lowest level of log lines written to stderr.",
)
def main(log_level: str) -> None:
    """Cerniq Outreach: multi-channel B2B outreach over WhatsApp, cold and warm email.

    Configuration comes from the environment (CERNIQ_DATABASE_URL, CERNIQ_REDIS_URL,
    CERNIQ_BROKER_URL, provider keys, ...); with none set it runs embedded on SQLite with
    sandbox providers.
    """
    del log_level  # read by each command from the root context once settings are loaded


# --- processes ------------------------------------------------------------------------------


@main.command()
@click.option("--host", default="127.0.0.1", help="Interface to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, help="TCP port to listen on.")
@click.option("--embedded", is_flag=True, help="Also run the workers and the scheduler in-process.")
@click.option("--demo", is_flag=True, help="Seed demo data and run on a fast simulated clock.")
def serve(host: str, port: int, embedded: bool, demo: bool) -> None:
    """Serve the HTTP API, provider webhooks and the dashboard."""
    del host, port, embedded, demo
    not_built()


@main.command()
def worker() -> None:
    """Run a dramatiq worker for all actors.

    Sends, sentiment scoring and projections all run here, taking jobs from CERNIQ_BROKER_URL.
    """
    not_built()


@main.command()
def scheduler() -> None:
    """Run the periodic scheduler tick.

    Each tick queues due sequence steps, checks review SLAs and phone health and rolls the
    daily stats. Run one; it holds a database lock so a second one waits.
    """
    not_built()


@main.command()
def migrate() -> None:
    """Apply migrations/ to the configured database.

    Idempotent: migrations already applied are skipped.
    """
    not_built()


@main.command()
@click.option(
    "--phones", type=click.IntRange(min=1), default=20, help="WhatsApp numbers in the pool."
)
@click.option("--leads", type=click.IntRange(min=1), default=1000, help="Leads to enroll.")
@click.option("--days", type=click.IntRange(min=1), default=5, help="Business days to simulate.")
@click.option("--seed", type=int, default=0, help="Random seed; the same seed gives the same run.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option(
    "--database-url",
    callback=_database_url_option,
    help="Store to write into (default: CERNIQ_DATABASE_URL, else a new SQLite file in ./var/).",
)
@click.option("--reset", is_flag=True, help="Empty a store that already holds events first.")
def demo(
    *,
    phones: int,
    leads: int,
    days: int,
    seed: int,
    as_json: bool,
    database_url: str | None,
    reset: bool,
) -> None:
    """Simulate business days against sandbox providers.

    Runs whole simulated days as fast as the machine allows and prints a summary. It refuses a
    store that already holds events unless --reset is given.
    """
    del phones, leads, days, seed, as_json, database_url, reset
    not_built()


@main.command("analyze-reply")
def analyze_reply() -> None:
    """Classify reply texts read from stdin.

    Reads one text a line (or JSONL objects with a "text" key) and writes one JSON object a
    line: label, score, confidence and triggers.
    """
    not_built()


@main.command()
@click.option("--tenant", metavar="T", help="Only this tenant's read models (id or name).")
@click.option("--projection", metavar="NAME", help="Only this read model.")
@click.option(
    "--verify", is_flag=True, help="Rebuild into a scratch copy; exit 1 on any difference."
)
def replay(tenant: str | None, projection: str | None, verify: bool) -> None:
    """Drop and rebuild read models from the event log."""
    del tenant, projection, verify
    not_built()


# --- tenants --------------------------------------------------------------------------------


@main.group()
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


# --- phones ---------------------------------------------------------------------------------


@main.group()
def phones() -> None:
    """Manage the pool of WhatsApp sending numbers."""


@phones.command("add")
@click.argument("number")
@tenant_option
@click.option("--label", help="A name for the number shown on the dashboard.")
@click.option(
    "--daily-limit",
    type=click.IntRange(1, 200),
    help="New conversations a day once warmed up (default: the tenant's, at most 200).",
)
def phones_add(number: str, tenant: str, label: str | None, daily_limit: int | None) -> None:
    """Add a WhatsApp number to the pool.

    NUMBER is any common form and is stored as E.164. A new number starts on the warm-up ramp.
    """
    del number, tenant, label, daily_limit
    not_built()


@phones.command("set-status")
@click.argument("phone")
@click.argument("status", type=click.Choice(PHONE_STATUSES, case_sensitive=False))
@tenant_option
@click.option("--reason", help="Why, recorded with the change.")
def phones_set_status(phone: str, status: str, tenant: str, reason: str | None) -> None:
    """Change a phone's status.

    PHONE is the phone's id or number. Only ACTIVE phones send.
    """
    del phone, status, tenant, reason
    not_built()


@phones.command("list")
@tenant_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object a line.")
def phones_list(tenant: str, as_json: bool) -> None:
    """List the phones with their status and today's quota."""
    del tenant, as_json
    not_built()


# --- channels -------------------------------------------------------------------------------


@main.group()
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


# --- leads ----------------------------------------------------------------------------------


@main.group()
def leads() -> None:
    """Manage leads."""


@leads.command("import")
@click.argument(
    "file", type=click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path)
)
@tenant_option
@click.option("--sequence", metavar="S", help="Enroll the imported leads in this sequence.")
def leads_import(file: Path, tenant: str, sequence: str | None) -> None:
    """Import qualified leads from a CSV or JSONL file.

    Good rows are imported; bad rows are reported with their line numbers.
    """
    del file, tenant, sequence
    not_built()


# --- events and audit -----------------------------------------------------------------------


@main.group()
def events() -> None:
    """Read the event log."""


@events.command("export")
@click.option("--tenant", metavar="T", help="Only this tenant's events (id or name).")
@click.option("--stream", metavar="ID", help="Only this stream.")
@click.option("--from-position", type=click.IntRange(min=0), help="First global position.")
@click.option("--until", type=AwareDateTime(), help="Only events recorded up to this time.")
@click.option("--redact", is_flag=True, help="Hide personal fields.")
def events_export(
    tenant: str | None,
    stream: str | None,
    from_position: int | None,
    until: datetime | None,
    redact: bool,
) -> None:
    """Write the event log as JSON lines, in global order."""
    del tenant, stream, from_position, until, redact
    not_built()


@main.group()
def audit() -> None:
    """Explain what happened, event by event."""


@audit.command("lead")
@click.argument("lead_id")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(("table", "json")),
    default="table",
    help="Output format.",
)
def audit_lead(lead_id: str, output_format: str) -> None:
    """Show a lead's journey, event by event.

    Each event is shown with the journey's state before and after it.
    """
    del lead_id, output_format
    not_built()


# --- gdpr -----------------------------------------------------------------------------------


@main.group()
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
