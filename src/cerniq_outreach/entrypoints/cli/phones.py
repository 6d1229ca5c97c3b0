"""`phones add | set-status | list`: the tenant's pool of WhatsApp sending numbers.

Changes go through `PhonePool`: recorded in the event log (the phone's own stream), shown
at once in `wa_phone_numbers`, and told to the quota guardian (Redis when
`CERNIQ_REDIS_URL` is set). Without Redis the guardian is in-process: this command's own
copy, loaded from the database, so `phones list` shows the usage the database knows of.
"""

from __future__ import annotations

import getpass
import sys
from contextlib import contextmanager
from datetime import UTC, date
from typing import TYPE_CHECKING, Final

import click
import msgspec
from rich.console import Console
from rich.table import Table

from cerniq_outreach.adapters.quota.redis_guardian import QuotaGuardianUnavailable
from cerniq_outreach.application.phone_pool import PhonePool
from cerniq_outreach.bootstrap import APP_ROLE, bootstrap, open_phone_pool
from cerniq_outreach.domain.enums import PhoneStatus
from cerniq_outreach.domain.errors import DomainError
from cerniq_outreach.domain.quota import DAILY_NEW_CONVERSATIONS
from cerniq_outreach.entrypoints.cli.base import (
    Group,
    fail,
    open_log,
    reported_errors,
    settings,
    tenant_option,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from cerniq_outreach.application.phone_directory import PhoneView

PHONE_STATUSES: Final = tuple(s.value for s in PhoneStatus)
# Wide enough for a row (a 32-character id and a number) when the table goes to a pipe.
_PIPE_WIDTH: Final = 160
_json = msgspec.json.Encoder()


@contextmanager
def phone_pool(tenant: str) -> Iterator[PhonePool]:
    """The pool for one command, with every error a user can act on reported (exit 1)."""
    loaded = settings()
    with reported_errors(), open_log(role=APP_ROLE) as log:
        pool, guardian = open_phone_pool(loaded, log, bootstrap(loaded).clock)
        try:
            if loaded.redis_url is None:
                # This process's own guardian: load it from the database, or it would show
                # no usage (in production Redis holds the truth and is not reloaded here).
                pool.sync_guardian(tenant)
            yield pool
        except DomainError as exc:
            fail(str(exc))
        except QuotaGuardianUnavailable as exc:
            fail(f"the quota guardian (Redis) cannot be reached: {exc}")
        finally:
            guardian.close()


class WarmupStart(click.ParamType[date | None | str]):
    """Day 1 of the warm-up ramp: a date, `today`, or `none` (the number is warm already)."""

    name = "DATE"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> date | str | None:
        """Parse `value`; `today` stays a word until the tenant's local date is known."""
        if value is None or isinstance(value, date):
            return value
        text = str(value).strip().lower()
        if text in {"today", "none"}:
            return text
        try:
            return date.fromisoformat(text)
        except ValueError:
            self.fail(f"{value!r} is not a date such as 2026-03-02, nor today or none", param, ctx)


@click.group(cls=Group)
def phones() -> None:
    """Manage the pool of WhatsApp sending numbers."""


@phones.command("add")
@click.argument("number")
@tenant_option
@click.option("--label", help="A name for the number shown on the dashboard.")
@click.option("--account-id", metavar="A", help="The number's TimelinesAI WhatsApp account id.")
@click.option(
    "--daily-limit",
    type=click.IntRange(0, DAILY_NEW_CONVERSATIONS),
    default=DAILY_NEW_CONVERSATIONS,
    help="New conversations a day once warmed up.",
)
@click.option(
    "--warmup-start",
    type=WarmupStart(),
    default="today",
    help="Day 1 of the warm-up ramp (YYYY-MM-DD, today, or none for a warm number).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the phone as one JSON object.")
def phones_add(  # click passes every parameter by name
    *,
    number: str,
    tenant: str,
    label: str | None,
    account_id: str | None,
    daily_limit: int,
    warmup_start: date | str | None,
    as_json: bool,
) -> None:
    """Add a WhatsApp number to the pool, ACTIVE.

    NUMBER is any common form and is stored as E.164. A new number starts on the warm-up
    ramp (20 new conversations on day 1, rising to its daily limit over about three weeks).
    """
    with phone_pool(tenant) as pool:
        warmup = _warmup_date(warmup_start, pool, tenant)
        added = pool.add(
            tenant,
            number,
            label=label,
            account_id=account_id,
            daily_limit=daily_limit,
            warmup_started=warmup,
            by=_operator(),
        )
    if as_json:
        click.echo(_json.encode(added))
        return
    ramp = f"warm-up from {added.warmup_started}" if added.warmup_started else "no warm-up"
    click.echo(
        f"added {added.number} as {added.phone_id}: {added.status}, "
        f"limit {added.daily_limit} a day, {ramp}"
    )


@phones.command("set-status")
@click.argument("phone")
@click.argument("status", type=click.Choice(PHONE_STATUSES, case_sensitive=False))
@tenant_option
@click.option("--reason", required=True, help="Why, recorded with the change.")
@click.option("--json", "as_json", is_flag=True, help="Print the phone as one JSON object.")
def phones_set_status(phone: str, status: str, tenant: str, reason: str, as_json: bool) -> None:
    """Change a phone's status.

    PHONE is the phone's id or its number in any common form. Only ACTIVE phones send;
    a lead whose phone is BANNED moves to another phone, the others wait for theirs.
    """
    with phone_pool(tenant) as pool:
        change = pool.set_status(tenant, phone, PhoneStatus(status.upper()), reason, by=_operator())
    after = change.after
    if as_json:
        click.echo(_json.encode(after))
    elif not change.changed:
        click.echo(f"{after.number} ({after.phone_id}) is {after.status} already: nothing changed")
    else:
        previous = change.before.status if change.before else "?"
        click.echo(f"{after.number} ({after.phone_id}): {previous} -> {after.status} ({reason})")


@phones.command("list")
@tenant_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object a line.")
def phones_list(tenant: str, as_json: bool) -> None:
    """List the phones with their status and today's quota."""
    with phone_pool(tenant) as pool:
        found = pool.list(tenant)
    if as_json:
        for view in found:
            click.echo(_json.encode(view))
        return
    print_table(tenant, found)


def print_table(tenant: str, found: list[PhoneView]) -> None:
    """The pool as a table: id, number, label, status, today's use, reputation, last check."""
    out = sys.stdout  # looked up now: test runners swap it
    console = Console(file=out, highlight=False, width=None if out.isatty() else _PIPE_WIDTH)
    if not found:
        console.print(f"tenant {tenant} has no phones: add one with `phones add`")
        return
    table = Table(title=f"tenant {tenant}: {len(found)} phones", title_justify="left")
    for name in ("id", "number", "label", "status", "today", "reputation", "last check (UTC)"):
        table.add_column(name, no_wrap=name != "label")
    for view in found:
        today = f"{view.used_today}/{view.limit_today}"
        if view.warming_up:
            today += " warm-up"
        checked = view.last_health_check_at
        table.add_row(
            view.phone_id,
            view.number,
            view.label or "",
            str(view.status),
            today,
            "" if view.reputation is None else str(view.reputation),
            "" if checked is None else checked.astimezone(UTC).strftime("%Y-%m-%d %H:%M"),
        )
    console.print(table)


def _warmup_date(value: date | str | None, pool: PhonePool, tenant: str) -> date | None:
    if value == "today":
        return pool.today(tenant)
    if value is None or value == "none":
        return None
    if isinstance(value, date):
        return value
    raise click.BadParameter(f"{value!r} is not a warm-up start", param_hint="--warmup-start")


def _operator() -> str:
    """Who runs the command, recorded with the change (`cli` when the system cannot say)."""
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):
        return "cli"


COMMANDS: Final = (phones,)
