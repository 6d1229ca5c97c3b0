"""Counters: a small thread-safe registry that any layer may count into.

Webhook intake counts refusals (bad signatures), duplicates, ignored echoes and events for
unknown leads here; `GET /metrics` (issue #8) renders them in the Prometheus text format with
`render_prometheus`. Standard library only, so the application may own it: a counter is
application state, not I/O.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

Labels = tuple[tuple[str, str], ...]


def _labels(labels: Mapping[str, str]) -> Labels:
    return tuple(sorted(labels.items()))


class Counters:
    """Monotonic counters keyed by name and labels; `inc` is safe from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[tuple[str, Labels], int] = {}

    def inc(self, name: str, amount: int = 1, **labels: str) -> None:
        """Add `amount` to the counter `name` with `labels`."""
        key = (name, _labels(labels))
        with self._lock:
            self._values[key] = self._values.get(key, 0) + amount

    def value(self, name: str, **labels: str) -> int:
        """The counter `name` with exactly `labels` (0 when never counted)."""
        with self._lock:
            return self._values.get((name, _labels(labels)), 0)

    def total(self, name: str) -> int:
        """The sum of `name` over every label set."""
        with self._lock:
            return sum(v for (n, _), v in self._values.items() if n == name)

    def snapshot(self) -> dict[tuple[str, Labels], int]:
        """A copy of every counter."""
        with self._lock:
            return dict(self._values)

    def render_prometheus(self) -> str:
        """Every counter in the Prometheus text exposition format (one TYPE line per name)."""
        lines: list[str] = []
        typed: set[str] = set()
        for (name, labels), value in sorted(self.snapshot().items()):
            if name not in typed:
                lines.append(f"# TYPE {name} counter")
                typed.add(name)
            rendered = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
            lines.append(f"{name}{{{rendered}}} {value}" if rendered else f"{name} {value}")
        return "\n".join(lines) + ("\n" if lines else "")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
