"""`audit lead`: one lead's journey, event by event, with the state before and after each.

`audit invariants`: an `events export` checked against the invariants of the domain rules.
"""

from __future__ import annotations

import sys
from datetime import UTC
from typing import TYPE_CHECKING, Any, BinaryIO, Final

import click
import msgspec
from rich.console import Console
from rich.table import Table

from cerniq_outreach.adapters.eventstore.serialization import export_data
from cerniq_outreach.application.audit import AuditStep, audit_trail, state_changes, state_view
from cerniq_outreach.application.invariant_check import (
    InvariantReport,
    MalformedExport,
    check_jsonl,
)
from cerniq_outreach.domain.business_hours import BusinessHours
from cerniq_outreach.domain.errors import ConfigurationError
from cerniq_outreach.domain.events import PHONE_STREAM_PREFIX
from cerniq_outreach.entrypoints.cli.base import Group, fail, open_log, reported_errors, settings

if TYPE_CHECKING:
    from cerniq_outreach.application.ports import EventStore
    from cerniq_outreach.application.records import RecordedEvent

# Wide enough that a summary rarely wraps when the table goes to a file or a pipe, where
# rich would otherwise assume 80 columns.
_PIPE_WIDTH: Final = 180


@click.group(cls=Group)
def audit() -> None:
    """Explain what happened, event by event, and check it kept the rules."""


@audit.command("lead")
@click.argument("lead_id")
@click.option(
    "--tenant",
    metavar="T",
    help="The lead's tenant (its id); needed only when two tenants use the same lead id.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(("table", "json")),
    default="table",
    help="Output format.",
)
def audit_lead(lead_id: str, tenant: str | None, output_format: str) -> None:
    """Show a lead's journey, event by event.

    Each event is shown with the journey's state before and after it: the stage, and
    whatever else the event changed (sequence, phone, reviews, opt-outs, messages).
    """
    with reported_errors(), open_log() as log:
        records = lead_events(log.store, lead_id, tenant)
    steps = audit_trail(records)
    if output_format == "json":
        click.echo(msgspec.json.format(msgspec.json.encode(audit_document(steps)), indent=2))
    else:
        print_table(steps)


def lead_events(store: EventStore, lead_id: str, tenant: str | None) -> list[RecordedEvent]:
    """The lead's stream; exits 1 when no tenant, or more than one, has that lead id."""
    if lead_id.startswith(PHONE_STREAM_PREFIX):
        # Phones keep their history in streams of their own, which are no lead's journey.
        fail(f"{lead_id} is a phone's stream, not a lead: see `events export --stream`")
    records = list(store.export(tenant_id=tenant, stream_id=lead_id))
    if not records:
        where = f" in tenant {tenant}" if tenant else ""
        fail(f"no lead {lead_id}{where}: the event log holds no events for it")
    tenants = sorted({r.tenant_id for r in records})
    if len(tenants) > 1:
        fail(f"lead {lead_id} exists in tenants {', '.join(tenants)}: choose one with --tenant")
    return sorted(records, key=lambda r: r.stream_version)


def audit_document(steps: list[AuditStep]) -> dict[str, Any]:
    """The whole audit as one JSON-ready object."""
    first = steps[0].record
    return {
        "tenant_id": first.tenant_id,
        "lead_id": first.stream_id,
        "events": [
            {
                "stream_version": s.record.stream_version,
                "global_position": s.record.global_position,
                "event_id": s.record.event_id,
                "event_type": s.record.event_type,
                "occurred_at": s.record.occurred_at,
                "recorded_at": s.record.recorded_at,
                "summary": s.summary,
                "data": export_data(s.record.event),
                "before": state_view(s.before),
                "after": state_view(s.after),
            }
            for s in steps
        ],
        "final": state_view(steps[-1].after),
    }


def print_table(steps: list[AuditStep]) -> None:
    """The audit as a table: one row per event, stage before -> after, other changes."""
    out = sys.stdout  # looked up now: test runners swap it
    console = Console(file=out, highlight=False, width=None if out.isatty() else _PIPE_WIDTH)
    first = steps[0].record
    table = Table(
        title=f"lead {first.stream_id} (tenant {first.tenant_id}): {len(steps)} events",
        title_justify="left",
    )
    table.add_column("#", justify="right")
    table.add_column("position", justify="right")
    table.add_column("occurred at (UTC)", no_wrap=True)
    table.add_column("event", no_wrap=True)
    table.add_column("summary", overflow="fold")
    table.add_column("stage before -> after", no_wrap=True)
    table.add_column("other changes", overflow="fold")
    for step in steps:
        before, after = step.before.stage, step.after.stage
        stage = str(after) if before == after else f"{before} -> {after}"
        changes = {k: v for k, v in state_changes(step.before, step.after).items() if k != "stage"}
        table.add_row(
            str(step.record.stream_version),
            str(step.record.global_position),
            step.record.occurred_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            step.record.event_type,
            step.summary,
            stage,
            "; ".join(_change(name, old, new) for name, (old, new) in changes.items()),
        )
    console.print(table)
    final = state_view(steps[-1].after)
    messages = len(final["messages"])
    console.print(
        f"now: {final['stage']}, sequence {'active' if final['sequence_active'] else 'stopped'}"
        f", {messages} message{'' if messages == 1 else 's'}"
        f", open reviews: {len(final['open_reviews'])}"
    )


def _change(name: str, old: object, new: object) -> str:
    """One changed state field; for mappings (messages) only the entries that changed."""
    if isinstance(old, dict) and isinstance(new, dict):
        keys = [k for k in new if old.get(k) != new[k]] + [k for k in old if k not in new]
        return "; ".join(f"{name} {k}: {_short(old.get(k))} -> {_short(new.get(k))}" for k in keys)
    return f"{name}: {_short(old)} -> {_short(new)}"


def _short(value: object) -> str:
    """A state value in a table cell: lists comma-separated, None as "none"."""
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "none"
    return "none" if value is None else str(value)


@audit.command("invariants")
@click.argument("export", metavar="[FILE]", type=click.File("rb"), default="-")
@click.option(
    "--zone",
    metavar="ZONE",
    help="IANA time zone of business hours and of the quota's calendar days "
    "[default: CERNIQ_TIMEZONE, else Europe/Bucharest].",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON document.")
def audit_invariants(export: BinaryIO, zone: str | None, as_json: bool) -> None:
    """Check an `events export` against every invariant of the domain rules.

    Reads FILE, or stdin when FILE is - or absent, and checks it alone (no database): phone
    daily limits and warm-up, business hours (Mon-Fri 09:00-18:00 in ZONE), opt-outs,
    replies, pauses and reviews, one send per message and one queue per step, the
    transition table, stream order. Prints one line per violation (rule, position, tenant,
    stream, what is wrong), then a summary. Exits 0 when every rule held, 1 when one did
    not or a line is malformed.
    """
    zone = zone or settings().timezone.key
    try:
        hours = BusinessHours(zone=zone)
    except ConfigurationError as exc:
        raise click.BadParameter(str(exc), param_hint="'--zone'") from None
    try:
        report = check_jsonl(export, hours=hours)
    except MalformedExport as exc:
        # Click's stdin stream may have no name (a test runner's buffer).
        fail(f"{getattr(export, 'name', '<stdin>')}: {exc}")
    if as_json:
        document = {"ok": report.ok, "zone": zone, **msgspec.to_builtins(report)}
        click.echo(msgspec.json.format(msgspec.json.encode(document), indent=2))
    else:
        for v in report.violations:
            click.echo(
                f"{v.rule} position={v.global_position} tenant={v.tenant_id} "
                f"stream={v.stream_id}: {v.detail}"
            )
        click.echo(summary_line(report))
        click.echo(verdict_line(report))
    if not report.ok:
        click.get_current_context().exit(1)


def summary_line(report: InvariantReport) -> str:
    """What the export held, in one line."""
    s = report.summary
    span = f", positions {s.first_position}..{s.last_position}" if s.events else ""
    streams = f"{_count(s.lead_streams, 'lead')}, {_count(s.phone_streams, 'phone')}"
    sent = ", ".join(f"{k} {n}" for k, n in s.sent.items()) or "nothing"
    conversations = _count(s.new_conversations, "new WhatsApp conversation")
    parts = [
        f"audited {_count(s.events, 'event')} ({_count(s.tenants, 'tenant')}, {streams}{span})",
        f"sent {sent}",
        f"{conversations} (busiest phone-day {s.busiest_phone_day})",
        _count(s.replies, "reply", "replies"),
    ]
    if s.unknown_event_types:
        unknown = ", ".join(f"{k} {n}" for k, n in s.unknown_event_types.items())
        parts.append(f"unknown event types skipped: {unknown}")
    return "; ".join(parts)


def verdict_line(report: InvariantReport) -> str:
    """Whether every invariant held, or how many violations of which rule."""
    if report.ok:
        return "every invariant held"
    by_rule = ", ".join(f"{rule} {n}" for rule, n in report.summary.violations.items())
    return f"{_count(len(report.violations), 'violation')}: {by_rule}"


def _count(n: int, singular: str, plural: str | None = None) -> str:
    return f"{n} {singular if n == 1 else plural or singular + 's'}"


COMMANDS: Final = (audit,)
