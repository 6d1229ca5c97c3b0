"""The `cerniq-outreach` command line.

One module per family of commands (`processes`, `admin`, `phones`, `leads`, `channels`,
`event_log`, `audit`) and the shared machinery in `base`: every command loads and validates
the settings before it runs, and exits 0 on success, 1 on a domain, input or configuration
error, 2 on a usage error.
"""

from __future__ import annotations

import click

from cerniq_outreach import __version__
from cerniq_outreach.entrypoints.cli import (
    admin,
    audit,
    channels,
    event_log,
    leads,
    phones,
    processes,
    replies,
)
from cerniq_outreach.entrypoints.cli.base import (
    CONTEXT_SETTINGS,
    LOG_LEVELS,
    NOT_BUILT,
    PROG,
    Group,
)

__all__ = ["NOT_BUILT", "PROG", "main"]


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


for _command in (
    *processes.COMMANDS,
    *event_log.COMMANDS,
    *admin.COMMANDS,
    *phones.COMMANDS,
    *leads.COMMANDS,
    *channels.COMMANDS,
    *audit.COMMANDS,
    *replies.COMMANDS,
):
    main.add_command(_command)
