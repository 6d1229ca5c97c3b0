"""Long-running processes and the tools that drive them: serve, worker, scheduler, demo."""

from __future__ import annotations

from typing import Final

import click

from cerniq_outreach.entrypoints.cli.base import Command, database_url_option, not_built


@click.command(cls=Command)
@click.option("--host", default="127.0.0.1", help="Interface to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, help="TCP port to listen on.")
@click.option("--embedded", is_flag=True, help="Also run the workers and the scheduler in-process.")
@click.option("--demo", is_flag=True, help="Seed demo data and run on a fast simulated clock.")
def serve(host: str, port: int, embedded: bool, demo: bool) -> None:
    """Serve the HTTP API, provider webhooks and the dashboard."""
    del host, port, embedded, demo
    not_built()


@click.command(cls=Command)
def worker() -> None:
    """Run a dramatiq worker for all actors.

    Sends, sentiment scoring and projections all run here, taking jobs from CERNIQ_BROKER_URL.
    """
    not_built()


@click.command(cls=Command)
def scheduler() -> None:
    """Run the periodic scheduler tick.

    Each tick queues due sequence steps, checks review SLAs and phone health and rolls the
    daily stats. Run one; it holds a database lock so a second one waits.
    """
    not_built()


@click.command(cls=Command)
@click.option(
    "--phones", type=click.IntRange(min=1), default=20, help="WhatsApp numbers in the pool."
)
@click.option("--leads", type=click.IntRange(min=1), default=1000, help="Leads to enroll.")
@click.option("--days", type=click.IntRange(min=1), default=5, help="Business days to simulate.")
@click.option("--seed", type=int, default=0, help="Random seed; the same seed gives the same run.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option(
    "--database-url",
    callback=database_url_option,
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


@click.command("analyze-reply", cls=Command)
def analyze_reply() -> None:
    """Classify reply texts read from stdin.

    Reads one text a line (or JSONL objects with a "text" key) and writes one JSON object a
    line: label, score, confidence and triggers.
    """
    not_built()


COMMANDS: Final = (serve, worker, scheduler, demo, analyze_reply)
