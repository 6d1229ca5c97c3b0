"""`make run`'s command as a newcomer meets it: the URL at once, activity within a minute.

`cerniq-outreach serve --embedded --demo` runs as its own process in an empty directory
(what a fresh clone has): it must print the server's URL, answer `/healthz`, and within a
minute show messages sent, replies received and reviews opened on its status page, whatever
the hour of the day. Then it must stop cleanly on SIGTERM.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx

WITHIN = 60.0  # seconds: the promise of the README


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_demo_prints_its_url_and_shows_activity_within_a_minute(tmp_path):
    """Sent messages, replies and reviews on the status page within 60 s of starting."""
    port = free_port()
    log = (tmp_path / "serve.log").open("w+b")
    process = subprocess.Popen(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "cerniq_outreach", "serve", "--demo", "--port", str(port)],
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={"PATH": "", "CERNIQ_LOG_FORMAT": "json"},
    )
    started = time.monotonic()
    pause = threading.Event()
    figures: dict[str, int] = {}
    try:
        while time.monotonic() - started < WITHIN:
            assert process.poll() is None, _output(log)
            try:
                figures = httpx.get(f"http://127.0.0.1:{port}/status", timeout=2).json()["counts"]
            except httpx.HTTPError:
                figures = {}
            if (
                figures.get("sent WHATSAPP", 0)
                and figures.get("replies", 0)
                and figures.get("reviews opened", 0)
            ):
                break
            pause.wait(0.5)
        assert figures.get("sent WHATSAPP", 0) > 0, (figures, _output(log))
        assert figures.get("replies", 0) > 0, figures
        assert figures.get("reviews opened", 0) > 0, figures
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).json() == {"status": "ok"}
        assert re.search(rf"serving on http://127\.0\.0\.1:{port}/", _output(log))
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=30)
        finally:
            process.kill()
            log.close()
    assert code == 0


def _output(log) -> str:
    log.flush()
    log.seek(0)
    return log.read().decode(errors="replace")[-4000:]
