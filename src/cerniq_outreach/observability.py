"""Structured logging: structlog configured once, standard-library logging routed through it.

Bind request-scoped ids with `structlog.contextvars.bound_contextvars(tenant_id=..., lead_id=...,
command_id=...)`; every line logged inside the block carries them, including lines written by
libraries through the standard `logging` module.

Logs go to stderr: stdout belongs to command output (`events export` writes JSON lines there).
"""

from __future__ import annotations

import logging
import sys
from importlib.util import find_spec
from typing import TYPE_CHECKING, TextIO

import structlog
import structlog.tracebacks

if TYPE_CHECKING:
    from structlog.typing import Processor

# Libraries that narrate every connection at INFO; their warnings still come through.
_CHATTY_LIBRARIES = ("pika", "httpx", "httpcore")

# The handler this module installed on the root logger, so a second call replaces it instead of
# printing every line twice.
_installed_handler: logging.Handler | None = None


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever `sys.stderr` is when a line is logged, not when configured.

    Test runners and click's CliRunner swap `sys.stderr` for a while; a handler holding the old
    object would write into a closed buffer afterwards.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        # logging.StreamHandler assigns `self.stream` in __init__ and setStream; ignore it.
        pass


def _shared_processors() -> list[Processor]:
    """Steps applied to structlog and standard-library records alike."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]


def _renderer(fmt: str | None, stream: TextIO) -> list[Processor]:
    """The final processors: JSON for machines, colours for a person at a terminal."""
    tty = _is_tty(stream)
    # Tracebacks never show local variables: they may hold API keys or personal data.
    if fmt == "json" or (fmt is None and not tty):
        return [
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
            ),
            structlog.processors.JSONRenderer(),
        ]
    exception_formatter: structlog.typing.ExceptionRenderer = structlog.dev.plain_traceback
    # rich is optional (it arrives with rich-click); without it tracebacks stay plain text.
    if tty and find_spec("rich") is not None:
        exception_formatter = structlog.dev.RichTracebackFormatter(show_locals=False)
    return [structlog.dev.ConsoleRenderer(colors=tty, exception_formatter=exception_formatter)]


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or file-less stream is not a terminal
        return False


def configure_logging(
    fmt: str | None = None, level: str | int = "INFO", *, stream: TextIO | None = None
) -> None:
    """Configure structlog and the standard `logging` module; calling it again reconfigures.

    Args:
        fmt: `"json"`, `"console"`, or None to choose JSON unless `stream` is a terminal.
        level: the lowest level written, as a name (`"DEBUG"`) or a `logging` constant.
        stream: where lines go; standard error by default.

    Raises:
        ValueError: `fmt` or `level` is not one of the accepted values.
    """
    global _installed_handler  # noqa: PLW0603  # logging is process-wide state by nature
    if fmt not in {None, "json", "console"}:
        raise ValueError(f"log format must be 'json' or 'console', not {fmt!r}")
    if isinstance(level, str):
        try:
            numeric_level = logging.getLevelNamesMapping()[level.upper()]
        except KeyError:
            raise ValueError(f"unknown log level {level!r}") from None
    else:
        numeric_level = level
    out = stream if stream is not None else sys.stderr

    shared = _shared_processors()
    structlog.configure(
        processors=[
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        context_class=dict,
        # Caching would pin loggers created before a reconfiguration (and before
        # `structlog.testing.capture_logs`) to the old processors.
        cache_logger_on_first_use=False,
    )

    handler = logging.StreamHandler(out) if stream is not None else _StderrHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *_renderer(fmt, out),
            ],
        )
    )
    root = logging.getLogger()
    if _installed_handler is not None:
        root.removeHandler(_installed_handler)
        _installed_handler.close()
    root.addHandler(handler)
    root.setLevel(numeric_level)
    _installed_handler = handler
    for name in _CHATTY_LIBRARIES:
        logging.getLogger(name).setLevel(max(numeric_level, logging.WARNING))


def get_logger(name: str | None = None, **initial: object) -> structlog.stdlib.BoundLogger:
    """A structlog logger (named after the calling module by convention) with `initial` bound."""
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name, **initial)
    return logger
