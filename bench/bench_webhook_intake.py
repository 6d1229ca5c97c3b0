"""Webhook intake: requests a second and acknowledgement latency, against a bare endpoint.

Each intake request is a Resend delivery with its own svix-id, signed as Svix signs it, so
every request runs the whole intake: Svix signature check, JSON shape check, an inbox INSERT
that succeeds (deduplication on a new identity), and an enqueue on the in-process job queue.
The job handler does nothing: background processing is not part of the acknowledgement.

The baseline is a bare Litestar endpoint of the same form (async POST handler, raw body, a
small JSON answer) that does no work. Both apps run under uvicorn in
their own process on loopback, one worker each; the driver is this process, with
CONCURRENCY keep-alive connections speaking HTTP/1.1 on raw asyncio streams (httpx itself
tops out near 550 requests a second on a 2-vCPU machine, which would measure the client).
Throughput is measured closed-loop (as fast as answers come); latency both there (where it
is mostly queueing: CONCURRENCY / throughput) and open-loop at the target rate of 1,000
requests a second, counted from when each request was due. Rounds alternate baseline and
intake so drift hits both alike.

The inbox is the embedded default's (a SQLite file) and, when the server named by
CERNIQ_BENCH_DATABASE_URL answers, PostgreSQL too (a scratch database, dropped at the end).

Prints `RESULT <name> <value> <unit>` lines; targets: >= 1,000 req/s and p99 < 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import uvicorn
from litestar import Litestar, Response, post
from litestar.params import RawBody
from psycopg import sql

from cerniq_outreach.adapters.clock import SystemClock
from cerniq_outreach.adapters.eventstore.sqlite_database import SqliteReadModels
from cerniq_outreach.adapters.jobs_inline import InlineJobQueue
from cerniq_outreach.adapters.migrations import migrate_postgres, migrate_sqlite
from cerniq_outreach.adapters.webhooks.inbox import PostgresWebhookInbox, SqlWebhookInbox
from cerniq_outreach.adapters.webhooks.verify import (
    SharedSecretVerifier,
    SvixVerifier,
    svix_signature,
)
from cerniq_outreach.application.metrics import Counters
from cerniq_outreach.application.webhooks import WEBHOOK_JOB, WebhookIntake
from cerniq_outreach.entrypoints.http.app import create_app
from cerniq_outreach.entrypoints.http.webhooks import WebhookGate

if TYPE_CHECKING:
    from collections.abc import Iterator

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # noqa: S105 - the Svix docs' test secret
SERVER_URL = os.environ.get(
    "CERNIQ_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
CONCURRENCY = 32
REQUESTS = 4000  # per round and app
WARMUP = 600
ROUNDS = 3
PACED_RATE = 1000  # the target rate: acknowledgement latency is measured at this offered load
PACED = 3000  # requests per paced round (three seconds)


# --- the two servers ---------------------------------------------------------------------------


@post("/webhooks/resend")
async def bare(body: RawBody) -> Response[dict[str, str]]:
    """The baseline: the same handler form (async, raw body), no work."""
    del body
    return Response({"status": "accepted"}, status_code=202)


def intake_app(database_url: str) -> Litestar:
    """The production intake wiring on the inbox at `database_url`."""
    if database_url.startswith("sqlite:///"):
        inbox: Any = SqlWebhookInbox(
            SqliteReadModels(database_url.removeprefix("sqlite:///"), durable=False)
        )
    else:
        inbox = PostgresWebhookInbox(database_url, role="cerniq_app")
    counters, clock = Counters(), SystemClock()
    queue = InlineJobQueue({WEBHOOK_JOB: lambda _payload: None}, counters)
    gate = WebhookGate(
        intake=WebhookIntake(inbox, queue, clock, counters),
        resend=SvixVerifier(SECRET, clock),
        timelinesai=SharedSecretVerifier(None),
        instantly=SharedSecretVerifier(None),
        counters=counters,
    )
    return create_app(webhooks=gate)


def serve(kind: str, port: int, database_url: str) -> None:
    """Run one app under uvicorn until killed (the subprocess half of this script)."""
    app = Litestar([bare]) if kind == "bare" else intake_app(database_url)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def free_port() -> int:
    """A loopback port nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server(kind: str, database_url: str = "") -> Iterator[int]:
    """A server subprocess; yields its port once it accepts connections."""
    port = free_port()
    args = [sys.executable, __file__, "--serve", kind, "--port", str(port), "--db", database_url]
    process = subprocess.Popen(args)  # noqa: S603 - our own script
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the {kind} server did not start")
            time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


# --- the driver --------------------------------------------------------------------------------


def signed_requests(count: int) -> list[bytes]:
    """Distinct Resend deliveries, each with its own svix-id, signed now."""
    stamp = int(time.time())
    requests = []
    for _ in range(count):
        msg_id = f"msg_{uuid.uuid4().hex}"
        body = json.dumps(
            {
                "type": "email.delivered",
                "created_at": "2026-03-02T08:00:00.000Z",
                "data": {
                    "email_id": msg_id,
                    "to": ["ion@ferma.ro"],
                    "tags": {"tenant_id": "t1", "lead_id": "lead-1", "message_id": "m-1"},
                },
            }
        ).encode()
        headers = {
            "svix-id": msg_id,
            "svix-timestamp": str(stamp),
            "svix-signature": svix_signature(SECRET, msg_id, stamp, body),
            "content-type": "application/json",
        }
        requests.append(raw_request(body, headers))
    return requests


def raw_request(body: bytes, headers: dict[str, str]) -> bytes:
    """One HTTP/1.1 keep-alive POST to the Resend endpoint, as bytes on the wire."""
    lines = [
        "POST /webhooks/resend HTTP/1.1",
        "host: 127.0.0.1",
        f"content-length: {len(body)}",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, req: bytes) -> None:
    """Send one request and read its whole answer (status line, headers, body)."""
    writer.write(req)
    head = await reader.readuntil(b"\r\n\r\n")
    status = head.split(b" ", 2)[1]
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    answer = await reader.readexactly(length) if length else b""
    if status != b"202":
        raise RuntimeError(f"{status.decode()}: {answer.decode()}")


async def drive(
    port: int, requests: list[bytes], rate: float | None = None
) -> tuple[float, list[float]]:
    """Send `requests` over CONCURRENCY keep-alive connections.

    Without `rate`: closed loop, as fast as the server answers (throughput). With `rate`:
    open loop, request i due at start + i / rate, latency counted from when it was due (so a
    stalled server cannot hide its queue: no coordinated omission). Returns (requests per
    second, latencies in ms).
    """
    latencies: list[float] = []
    connections = [await asyncio.open_connection("127.0.0.1", port) for _ in range(CONCURRENCY)]
    start = time.perf_counter()

    async def worker(k: int) -> None:
        reader, writer = connections[k]
        for i in range(k, len(requests), CONCURRENCY):
            due = start + i / rate if rate else time.perf_counter()
            if rate:
                await asyncio.sleep(max(0.0, due - time.perf_counter()))  # pacing, not a wait
            await exchange(reader, writer, requests[i])
            latencies.append((time.perf_counter() - due) * 1000)

    await asyncio.gather(*(worker(k) for k in range(CONCURRENCY)))
    elapsed = time.perf_counter() - start
    for _, writer in connections:
        writer.close()
    return len(requests) / elapsed, latencies


def percentile(values: list[float], q: float) -> float:
    """The `q` quantile of `values`, to a thousandth."""
    return statistics.quantiles(values, n=1000)[int(q * 1000) - 1]


def measure(label: str, inbox_url: str) -> None:
    """Alternate rounds of the bare endpoint and the intake; print the RESULT lines."""
    kinds = ("bare", "intake")
    rates: dict[str, list[float]] = {k: [] for k in kinds}
    saturated: dict[str, list[float]] = {k: [] for k in kinds}
    paced: dict[str, list[float]] = {k: [] for k in kinds}
    with server("bare") as bare_port, server("intake", inbox_url) as intake_port:
        ports = {"bare": bare_port, "intake": intake_port}
        for port in ports.values():
            asyncio.run(drive(port, signed_requests(WARMUP)))
        for _ in range(ROUNDS):
            for kind, port in ports.items():
                rate, lat = asyncio.run(drive(port, signed_requests(REQUESTS)))
                rates[kind].append(rate)
                saturated[kind].extend(lat)
                _, lat = asyncio.run(drive(port, signed_requests(PACED), rate=PACED_RATE))
                paced[kind].extend(lat)
    for kind, name in (("intake", f"webhook_intake_{label}"), ("bare", f"bare_litestar_{label}")):
        print(f"RESULT {name}_rps {statistics.median(rates[kind]):.0f} req/s")
        print(f"RESULT {name}_saturated_p50 {percentile(saturated[kind], 0.5):.2f} ms")
        print(f"RESULT {name}_saturated_p99 {percentile(saturated[kind], 0.99):.2f} ms")
        print(f"RESULT {name}_at_{PACED_RATE}rps_p50 {percentile(paced[kind], 0.5):.2f} ms")
        print(f"RESULT {name}_at_{PACED_RATE}rps_p99 {percentile(paced[kind], 0.99):.2f} ms")
    ratio = statistics.median(rates["intake"]) / statistics.median(rates["bare"])
    print(f"RESULT webhook_intake_{label}_vs_bare {ratio:.2f} ratio")


@contextlib.contextmanager
def scratch_postgres() -> Iterator[str | None]:
    """A migrated scratch database on CERNIQ_BENCH_DATABASE_URL, or None if it does not answer."""
    try:
        admin = psycopg.connect(SERVER_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError:
        yield None
        return
    name = f"cerniq_bench_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        url = psycopg.conninfo.make_conninfo(SERVER_URL, dbname=name)
        try:
            migrate_postgres(url)
            yield url
        finally:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def main() -> None:
    """Measure (or, with --serve, be one of the servers)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve", choices=["bare", "intake"])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--db", default="")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.db)
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "inbox.db"
        migrate_sqlite(str(path))
        measure("sqlite", f"sqlite:///{path}")
    with scratch_postgres() as url:
        if url is None:
            print(f"# PostgreSQL at {SERVER_URL} does not answer: its figures are skipped")
        else:
            measure("postgres", url)


if __name__ == "__main__":
    main()
