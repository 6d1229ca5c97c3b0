"""What every command shares: loading settings, exit codes, option types, error reporting.

Every command validates the configuration (`Settings.from_env`) after its own options are parsed
and before it runs, so `--help` works whatever the environment holds and a bad variable stops
the command with exit code 1 and one line naming it. Exit codes: 0 success, 1 domain, input or
configuration error, 2 usage error (and, for now, a command that is not built yet).
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, NoReturn

import click
import psycopg

from cerniq_outreach.adapters.migrations import MigrationError
from cerniq_outreach.application.records import EventStoreError
from cerniq_outreach.application.replay import ReplayError
from cerniq_outreach.bootstrap import FOLLOWER_ROLE, EventLog, open_event_store
from cerniq_outreach.domain.codec import EventDecodeError, UnknownEventType
from cerniq_outreach.observability import configure_logging
from cerniq_outreach.settings import Settings, SettingsError, check_database_url

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

PROG: Final = "cerniq-outreach"

# Commands whose implementation arrives with a later issue: (issue number, issue title). When a
# command becomes real, delete its entry here and replace the `not_built()` call in its body.
NOT_BUILT: Final[dict[str, tuple[int, str]]] = {
    "tenants create": (8, "HTTP API"),
    "gdpr export": (9, "consent and erasure"),
    "gdpr erase": (9, "consent and erasure"),
}

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


def fail(message: str) -> NoReturn:
    """Report a domain or input error on stderr, prefixed with the command, and exit 1."""
    ctx = click.get_current_context()
    click.echo(f"{PROG} {command_path(ctx)}: {message}", err=True)
    ctx.exit(1)


def settings() -> Settings:
    """The settings the running command loaded (see `Command.invoke`)."""
    obj = click.get_current_context().obj
    if not isinstance(obj, Settings):  # pragma: no cover - Command.invoke always sets it
        raise TypeError("settings are loaded by Command.invoke")
    return obj


def open_log(role: str = FOLLOWER_ROLE) -> EventLog:
    """Open the configured event log; a SQLite file that does not exist is an input error.

    Reading commands default to the follower role: audits and exports cross tenants.
    A missing SQLite file is checked first because SQLite would create an empty one and
    then report missing tables. Call it inside `reported_errors()`.
    """
    loaded = settings()
    path = loaded.sqlite_path
    if path is None:
        # The pools connect in the background and retry: a server that is down, or roles
        # that do not exist yet, would only show as a pool timeout much later. One direct
        # connection fails at once with libpq's reason.
        with psycopg.connect(loaded.database_url, connect_timeout=10) as conn:
            row = conn.execute("SELECT to_regclass('events') IS NOT NULL").fetchone()
        if not (row and row[0]):
            fail(f"the database has no event log: run `{PROG} migrate` first")
    elif not path.exists():
        fail(f"no database at {path}: run `{PROG} migrate` first")
    return open_event_store(loaded, role=role)


@contextmanager
def reported_errors() -> Iterator[None]:
    """Turn the errors a user can act on into one line on stderr and exit 1, not a traceback.

    Database errors keep only libpq's or SQLite's first line: it names the problem, never a
    password.
    """
    try:
        yield
    except (
        MigrationError,
        EventStoreError,
        ReplayError,
        UnknownEventType,
        EventDecodeError,
    ) as exc:
        fail(str(exc))
    except (psycopg.Error, sqlite3.Error) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        hint = ""
        if isinstance(exc, psycopg.errors.UndefinedTable) or "no such table" in first:
            hint = f" (has `{PROG} migrate` run on this database?)"
        fail(f"database error: {first}{hint}")


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
            loaded = Settings.from_env(os.environ)
        except SettingsError as exc:
            click.echo(f"{PROG}: configuration error: {exc}", err=True)
            ctx.exit(1)
        ctx.obj = loaded
        configure_logging(loaded.log_format, ctx.find_root().params.get("log_level", "INFO"))
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


def database_url_option(
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
