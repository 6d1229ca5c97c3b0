"""The Litestar application factory: every collaborator passed in, no globals.

`create_app(webhooks=...)` serves the provider webhooks; the HTTP API (issue #8) and `serve`
(issue #6) add their routers through `route_handlers` and their start/stop hooks through
`on_startup`/`on_shutdown`. Errors are RFC 9457 problem details (`problems.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from litestar import Litestar
from litestar.openapi import OpenAPIConfig
from litestar.types import ControllerRouterHandler

from cerniq_outreach import __version__
from cerniq_outreach.entrypoints.http.problems import EXCEPTION_HANDLERS
from cerniq_outreach.entrypoints.http.webhooks import WebhookGate, webhook_router


def create_app(
    *,
    webhooks: WebhookGate | None = None,
    route_handlers: Sequence[ControllerRouterHandler] = (),
    on_startup: Sequence[Callable[[], Any]] = (),
    on_shutdown: Sequence[Callable[[], Any]] = (),
    debug: bool = False,
) -> Litestar:
    """The HTTP app: the webhook routes when `webhooks` is given, plus `route_handlers`."""
    handlers: list[ControllerRouterHandler] = list(route_handlers)
    if webhooks is not None:
        handlers.append(webhook_router(webhooks))
    return Litestar(
        route_handlers=handlers,
        exception_handlers=dict(EXCEPTION_HANDLERS),  # type: ignore[arg-type]
        on_startup=list(on_startup),
        on_shutdown=list(on_shutdown),
        openapi_config=OpenAPIConfig(title="Cerniq Outreach", version=__version__, path="/schema"),
        debug=debug,
    )
