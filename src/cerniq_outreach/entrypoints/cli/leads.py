"""`leads import`: qualified leads from a CSV or JSONL file, enrolled in a sequence.

The file is read whole first (`application.lead_import`), then each good row is enrolled.
Never all-or-nothing: good rows are imported even when others are bad, and importing the
same file again is safe, since a lead's id derives from its contact and rows enrolled the
first time come back as "already enrolled". Problems go to stderr one a line, compiler
style (`leads.csv:12:5: phone '07x' contains letters`), so editors can jump to them; the
summary goes to stdout, as text or one JSON object.
"""

from __future__ import annotations

import io
import sys
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import click
import msgspec
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cerniq_outreach.application.catalog import CatalogError
from cerniq_outreach.application.enrolment import EnrolOutcome
from cerniq_outreach.application.lead_import import ImportIssue, format_of, read_leads
from cerniq_outreach.bootstrap import APP_ROLE, bootstrap, open_catalog, open_enrolment
from cerniq_outreach.domain.errors import DomainError
from cerniq_outreach.entrypoints.cli.base import Group, fail, open_log, reported_errors, settings

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from cerniq_outreach.application.enrolment import Enrolment
    from cerniq_outreach.application.lead_import import ImportedRow, LeadFile, TextSource

ACTOR: Final = "cli:leads-import"
STDIN_NAME: Final = "<stdin>"
# Below this many rows an import ends before a bar would have been worth drawing.
PROGRESS_THRESHOLD: Final = 500
# The summary lists this many invalid lines; stderr has every one of them.
_SHOWN_LINES: Final = 10
_json = msgspec.json.Encoder()


class Refusal(msgspec.Struct, frozen=True, kw_only=True):
    """A good row that enrolment refused, and why."""

    line: int
    lead_id: str
    reason: str


class Tally(msgspec.Struct, kw_only=True):
    """What enrolment did with the file's good rows."""

    enrolled: int = 0
    already_enrolled: int = 0
    refusals: list[Refusal] = msgspec.field(default_factory=list)


def _tenant_id(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """A tenant id that is not blank (a usage error otherwise)."""
    del ctx, param
    if not value.strip():
        raise click.BadParameter("the tenant id is empty")
    return value.strip()


@click.group(cls=Group)
def leads() -> None:
    """Manage leads."""


@leads.command("import")
@click.argument(
    "file", type=click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path)
)
@click.option(
    "--tenant",
    metavar="T",
    required=True,
    callback=_tenant_id,
    help="Tenant id (tenant names are accepted once tenants can be created).",
)
@click.option(
    "--sequence", metavar="S", help="Enrol the leads in this sequence (default: the default one)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@click.option("--dry-run", is_flag=True, help="Check the file and report; import nothing.")
def leads_import(
    file: Path, tenant: str, sequence: str | None, as_json: bool, dry_run: bool
) -> None:
    """Import qualified leads from a CSV or JSONL file (FILE, or - for stdin).

    CSV has a header row (delimiter , ; or tab; UTF-8, with or without BOM); JSONL has one
    object a line. Columns or keys: company_name (required), fiscal_code, county,
    contact_name, phone, email (a lead needs one of the two), lawful_basis_whatsapp,
    lawful_basis_email (CONSENT, EXISTING_CUSTOMER or LEGITIMATE_INTEREST), basis_source,
    tags (separated by ; | or ,).

    Bad rows are reported on stderr as FILE:LINE:COLUMN: message; the good rows are
    imported all the same, and the command then exits 1. Importing a file again is safe:
    rows imported before are reported as already enrolled.
    """
    loaded = settings()
    try:
        catalog = open_catalog(loaded)
        sequence_id = catalog.sequence(sequence or catalog.default_sequence).sequence_id
    except (CatalogError, DomainError) as exc:
        fail(str(exc))
    display = STDIN_NAME if str(file) == "-" else str(file)
    clock = bootstrap(loaded).clock
    tally = Tally()
    with reported_errors(), ExitStack() as stack:
        # The log is opened before the file is read: a database that is not there stops
        # the import before any work, and with nothing half done.
        log = None if dry_run else stack.enter_context(open_log(role=APP_ROLE))
        with _opened(file) as stream:
            parsed = read_leads(
                stream,
                name=STDIN_NAME if str(file) == "-" else file.name,
                imported_at=clock.now(),
                lead_format=format_of(file.name),
            )
        _report_issues(display, parsed)
        if log is not None:
            enrolment = open_enrolment(loaded, log, clock)
            try:
                tally = _enrol(enrolment, tenant, sequence_id, parsed.rows)
            except DomainError as exc:
                fail(str(exc))
    for refusal in tally.refusals:
        click.echo(f"{display}:{refusal.line}: lead refused: {refusal.reason}", err=True)
    summary = _summary(display, tenant, sequence_id, parsed, tally, dry_run=dry_run)
    if as_json:
        click.echo(_json.encode(summary))
    else:
        _print_summary(summary)
    _exit_status(parsed, tally, dry_run=dry_run)


@contextmanager
def _opened(file: Path) -> Iterator[TextSource]:
    """The file (or stdin) as UTF-8 text; undecodable bytes are kept for the reader to name."""
    # surrogateescape: a line that is not UTF-8 becomes one reported row, not a crash.
    # newline="": line breaks inside quoted CSV cells stay as written.
    if str(file) != "-":
        try:
            stream = file.open(encoding="utf-8-sig", errors="surrogateescape", newline="")
        except OSError as exc:
            fail(f"cannot read {file}: {exc.strerror or exc}")
        with stream:
            yield stream
        return
    stdin = io.TextIOWrapper(
        sys.stdin.buffer,  # looked up now: test runners swap it
        encoding="utf-8-sig",
        errors="surrogateescape",
        newline="",
    )
    try:
        yield stdin
    finally:
        stdin.detach()  # closing the wrapper would close the process's stdin


def _report_issues(display: str, parsed: LeadFile) -> None:
    """Errors and warnings on stderr, in line order, as FILE:LINE:COLUMN: message."""
    issues = [(issue, "") for issue in parsed.errors]
    issues += [(issue, "warning: ") for issue in parsed.warnings]
    issues.sort(key=lambda pair: (pair[0].line, pair[0].column or 0))
    for issue, kind in issues:
        where = f"{display}:{issue.line}" + (f":{issue.column}" if issue.column else "")
        click.echo(f"{where}: {kind}{issue.message}", err=True)


def _enrol(
    enrolment: Enrolment, tenant: str, sequence_id: str, rows: tuple[ImportedRow, ...]
) -> Tally:
    """Enrol every good row, with a progress bar on a terminal for a large file."""
    tally = Tally()
    with _progress(len(rows)) as advance:
        for row in rows:
            result = enrolment.enroll(tenant, row.lead, sequence_id=sequence_id, actor=ACTOR)
            if result.outcome is EnrolOutcome.ENROLLED:
                tally.enrolled += 1
            elif result.outcome is EnrolOutcome.ALREADY_ENROLLED:
                tally.already_enrolled += 1
            else:
                reason = result.detail or "refused"
                tally.refusals.append(Refusal(line=row.line, lead_id=result.lead_id, reason=reason))
            advance()
    return tally


@contextmanager
def _progress(total: int) -> Iterator[Callable[[], None]]:
    """A callback that advances a bar on stderr, drawn only on a terminal and for many rows."""
    console = Console(file=sys.stderr)  # looked up now: test runners swap it
    if total < PROGRESS_THRESHOLD or not console.is_terminal:
        yield lambda: None
        return
    columns = (
        TextColumn("importing leads"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("import", total=total)
        yield lambda: bar.advance(task)


def _summary(
    display: str, tenant: str, sequence_id: str, parsed: LeadFile, tally: Tally, *, dry_run: bool
) -> dict[str, Any]:
    """The summary `--json` prints: counts, then every error, refusal and warning."""
    return {
        "file": display,
        "format": parsed.format,
        "tenant_id": tenant,
        "sequence_id": sequence_id,
        "dry_run": dry_run,
        "read": parsed.read,
        "valid": len(parsed.rows),
        "enrolled": tally.enrolled,
        "already_enrolled": tally.already_enrolled,
        "refused": len(tally.refusals),
        "invalid": parsed.invalid,
        "errors": parsed.errors,
        "refusals": tally.refusals,
        "warnings": parsed.warnings,
    }


def _print_summary(summary: dict[str, Any]) -> None:
    """The summary as a few lines of text."""
    click.echo(
        f"{summary['file']}: {summary['read']} rows read for tenant {summary['tenant_id']}, "
        f"sequence {summary['sequence_id']}"
    )
    if summary["dry_run"]:
        click.echo(f"  valid             {summary['valid']}")
    else:
        click.echo(f"  enrolled          {summary['enrolled']}")
        click.echo(f"  already enrolled  {summary['already_enrolled']}")
        click.echo(f"  refused           {summary['refused']}")
        for refusal in summary["refusals"]:
            click.echo(f"    line {refusal.line}: {refusal.reason}")
    invalid: int = summary["invalid"]
    errors: tuple[ImportIssue, ...] = summary["errors"]
    lines = sorted({issue.line for issue in errors})
    shown = ", ".join(map(str, lines[:_SHOWN_LINES]))
    shown += ", ..." if len(lines) > _SHOWN_LINES else ""
    click.echo(f"  invalid           {invalid}" + (f" (lines {shown})" if lines else ""))
    if summary["dry_run"]:
        click.echo("dry run: nothing was imported")


def _exit_status(parsed: LeadFile, tally: Tally, *, dry_run: bool) -> None:
    """Exit 1 when any row was not imported, saying what happened to the good ones."""
    refused = len(tally.refusals)
    if not parsed.errors and not refused:
        return
    if parsed.invalid or refused:
        counts = [f"{parsed.invalid} invalid"] if parsed.invalid else []
        counts += [f"{refused} refused"] if refused else []
        missed = parsed.invalid + refused
        head = f"{missed} of {parsed.read} rows not imported ({', '.join(counts)})"
    else:  # the header, or bytes that are not UTF-8, stopped the reading
        head = "the file could not be read to its end" if parsed.read else "nothing could be read"
    good = len(parsed.rows) - refused
    rows = "row" if good == 1 else "rows"
    if not good:
        fail(f"{head}; nothing was imported")
    if dry_run:
        fail(f"{head}; the {good} good {rows} would be imported (dry run: nothing was)")
    fail(
        f"{head}; the {good} good {rows} {'was' if good == 1 else 'were'} imported. Fix the "
        "others and import the file again: rows already imported are skipped"
    )


COMMANDS: Final = (leads,)
