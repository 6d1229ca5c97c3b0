"""RFC 9457 problem details: every error answer of the HTTP API, never a stack trace.

`problem(...)` builds one; `EXCEPTION_HANDLERS` turns Litestar's own HTTP exceptions (413
body too large, 404, 405, its validation errors) and anything unexpected into one.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any, Final

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException

PROBLEM_JSON: Final = "application/problem+json"
_log = logging.getLogger(__name__)


def problem(
    status: int,
    detail: str,
    *,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[dict[str, Any]]:
    """A problem-details response; `errors` lists `{field, message}` for validation failures."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    del request
    errors = None
    if isinstance(exc, ValidationException) and isinstance(exc.extra, list):
        errors = [
            {"field": str(e.get("key", "")), "message": str(e.get("message", ""))}
            for e in exc.extra
            if isinstance(e, dict)
        ]
    return problem(exc.status_code, exc.detail, errors=errors, headers=exc.headers)


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    _log.error("unhandled error", exc_info=exc, extra={"path": request.url.path})
    return problem(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error")


EXCEPTION_HANDLERS: Final = {HTTPException: _http_exception, Exception: _unexpected}
__all__ = ["EXCEPTION_HANDLERS", "PROBLEM_JSON", "MediaType", "problem"]
