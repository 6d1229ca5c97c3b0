"""Logging: JSON lines off a terminal, bound ids on every line, stdlib routed through structlog."""

from __future__ import annotations

import io
import json
import logging

import pytest
import structlog

from cerniq_outreach.observability import configure_logging, get_logger


@pytest.fixture(autouse=True)
def restore_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    structlog.reset_defaults()


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_bound_ids_level_and_utc_timestamp():
    """Off a terminal each line is one JSON object with the context ids and an ISO UTC time."""
    out = io.StringIO()
    configure_logging(None, stream=out)
    with structlog.contextvars.bound_contextvars(tenant_id="t1", command_id="c1"):
        get_logger("cerniq.test").info("message_sent", lead_id="L1")
    [line] = lines(out)
    assert line["event"] == "message_sent"
    assert (line["tenant_id"], line["command_id"], line["lead_id"]) == ("t1", "c1", "L1")
    assert line["level"] == "info"
    assert str(line["timestamp"]).endswith("Z")


def test_standard_library_logging_goes_through_the_same_renderer():
    """A library's `logging` call becomes a JSON line too, with the bound context."""
    out = io.StringIO()
    configure_logging("json", stream=out)
    with structlog.contextvars.bound_contextvars(lead_id="L2"):
        logging.getLogger("some.library").warning("retrying %s", "send")
    [line] = lines(out)
    assert (line["event"], line["lead_id"], line["logger"]) == (
        "retrying send",
        "L2",
        "some.library",
    )


def test_configuring_twice_does_not_duplicate_lines():
    """Calling configure_logging again replaces its handler instead of adding a second one."""
    first, second = io.StringIO(), io.StringIO()
    configure_logging("json", stream=first)
    configure_logging("json", stream=second)
    get_logger().warning("once")
    assert first.getvalue() == ""
    assert len(lines(second)) == 1


def test_level_filters_lower_lines():
    """Below the configured level nothing is written."""
    out = io.StringIO()
    configure_logging("json", level="WARNING", stream=out)
    get_logger().info("hidden")
    get_logger().error("shown")
    assert [line["event"] for line in lines(out)] == ["shown"]


def test_console_format_is_plain_text():
    """The console renderer writes readable text, not JSON."""
    out = io.StringIO()
    configure_logging("console", stream=out)
    get_logger().info("hello", lead_id="L3")
    text = out.getvalue()
    assert "hello" in text
    assert "lead_id=L3" in text
    assert not text.lstrip().startswith("{")


def test_tracebacks_never_show_local_variables():
    """An exception's locals may hold keys or personal data; they never reach the log."""
    out = io.StringIO()
    configure_logging("json", stream=out)

    def send() -> None:
        api_key = "re_Hunter2"
        raise RuntimeError("boom " + api_key[:3])

    try:
        send()
    except RuntimeError:
        get_logger().exception("send_failed")
    assert "Hunter2" not in out.getvalue()
    assert "RuntimeError" in out.getvalue()


@pytest.mark.parametrize(("fmt", "level"), [("xml", "INFO"), ("json", "LOUD")])
def test_unknown_format_or_level_is_refused(fmt, level):
    """A typo in the format or level is an error, not silently the default."""
    with pytest.raises(ValueError, match="log"):
        configure_logging(fmt, level)
