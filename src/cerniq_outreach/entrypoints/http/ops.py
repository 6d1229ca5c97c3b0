"""Operations routes: `/healthz`, `/readyz`, `/metrics`, and the engine's status at `/`.

- `/healthz`: the process answers (200).
- `/readyz`: each dependency (database, Redis, broker) answers; 503 with the failing ones
  named otherwise, so a load balancer stops sending requests to a process that cannot
  serve them.
- `/metrics`: the process's counters in the Prometheus text format.
- `/` and `/status` (embedded mode only): what the engine is doing, as a page for a person
  (the full dashboard is issue #10) and as JSON: the simulated or real time, messages per
  channel, replies, reviews, the latest events. The page refreshes itself every few
  seconds; plain HTML written here, no scripts. Production shows no unauthenticated
  activity: `/` points at the API schema and `/status` answers 404.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from litestar import MediaType, Response, Router, get
from litestar.di import NamedDependency, Provide

from cerniq_outreach.application.metrics import Counters
from cerniq_outreach.entrypoints.http.problems import problem

Check = Callable[[], None]
"""Raises when its dependency cannot be reached."""


@dataclass(frozen=True, slots=True)
class OpsState:
    """What the operations routes read: readiness checks, counters, the status snapshot."""

    checks: Mapping[str, Check]
    counters: Counters
    status: Callable[[], dict[str, Any]] | None = None
    """The status snapshot; None outside the embedded mode (no unauthenticated activity)."""


Ops = NamedDependency[OpsState]


@get("/healthz", operation_id="health", sync_to_thread=False)
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@get("/readyz", operation_id="ready", sync_to_thread=True)
def readyz(ops: Ops) -> Response[dict[str, Any]]:
    """Every dependency answers (database, Redis, broker)."""
    failing: dict[str, str] = {}
    for name, check in ops.checks.items():
        try:
            check()
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            failing[name] = type(exc).__name__
    if failing:
        return Response(
            {"status": "unavailable", "failing": failing},
            status_code=HTTPStatus.SERVICE_UNAVAILABLE,
        )
    return Response({"status": "ready", "checked": sorted(ops.checks)})


@get("/metrics", operation_id="metrics", media_type=MediaType.TEXT, sync_to_thread=False)
def metrics(ops: Ops) -> str:
    """The counters in the Prometheus text exposition format."""
    return ops.counters.render_prometheus()


@get("/", operation_id="statusPage", media_type=MediaType.HTML, sync_to_thread=True)
def status_page(ops: Ops) -> Response[str]:
    """A self-refreshing page of what the engine is doing (embedded mode)."""
    if ops.status is None:
        return Response(_PRODUCTION_PAGE, media_type=MediaType.HTML)
    return Response(render_status(ops.status()), media_type=MediaType.HTML)


@get("/status", operation_id="status", sync_to_thread=True)
def status(ops: Ops) -> Response[dict[str, Any]]:
    """The status page's figures as JSON (embedded mode; 404 in production)."""
    if ops.status is None:
        return problem(HTTPStatus.NOT_FOUND, "the status snapshot is served in embedded mode only")
    return Response(ops.status())


_PRODUCTION_PAGE = (
    "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Cerniq Outreach</title>"
    "</head><body><h1>Cerniq Outreach</h1><p>The API is described at "
    "<a href='/schema'>/schema</a>.</p></body></html>"
)


def render_status(snapshot: dict[str, Any]) -> str:
    """The status page for a snapshot (every value escaped)."""
    e = html.escape
    counts = "".join(
        f"<tr><th>{e(str(name))}</th><td>{e(str(value))}</td></tr>"
        for name, value in snapshot.get("counts", {}).items()
    )
    recent = "".join(
        f"<li><time>{e(str(item.get('at', '')))}</time> {e(str(item.get('text', '')))}</li>"
        for item in snapshot.get("recent", [])
    )
    return (
        "<!doctype html><html lang='ro'><head><meta charset='utf-8'>"
        "<meta http-equiv='refresh' content='3'><title>Cerniq Outreach</title>"
        "<style>body{font:15px system-ui,sans-serif;margin:2rem;max-width:60rem}"
        "th{text-align:left;padding-right:1rem}li{margin:.2rem 0}time{color:#666}</style>"
        "</head><body><h1>Cerniq Outreach</h1>"
        f"<p>{e(str(snapshot.get('mode', '')))} · {e(str(snapshot.get('clock', '')))}</p>"
        f"<h2>Today</h2><table>{counts}</table>"
        f"<h2>Latest</h2><ul>{recent}</ul>"
        "<p><a href='/schema'>API schema</a> · <a href='/metrics'>metrics</a></p>"
        "</body></html>"
    )


def ops_router(state: OpsState) -> Router:
    """The operations routes bound to `state`."""
    return Router(
        path="/",
        route_handlers=[healthz, readyz, metrics, status_page, status],
        dependencies={"ops": Provide(lambda: state, use_cache=True, sync_to_thread=False)},
        tags=["operations"],
    )
