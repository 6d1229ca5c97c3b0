"""The production JobQueue: dramatiq actors on RabbitMQ or Redis, one actor per job name.

`DramatiqJobQueue` declares an actor for every name in `JOB_NAMES` (and any other handler it
is given) on one queue of its own broker, so a producer (an API process, no handlers) and a
worker (`run_worker`, with handlers) share the code that names and encodes jobs.

A message carries an envelope, not the bare payload: the payload (bytes go as base64, since
dramatiq messages are JSON), the job's id (kept across its retries, for the logs), how many
times it has failed, and the clock time it may run from. The handler gets back exactly what
was enqueued: bytes as bytes, a dict as its JSON round trip.

What a handler's ending means is `application.jobs`' rule, applied here rather than by
dramatiq's `Retries` middleware (whose backoff and counting differ): the wrapper re-enqueues a
deferred job (`RetryLater`, no retry spent) or a failed one (backoff from `RetryPolicy`, while
retries remain) as a new message with a delay, and counts what it gives up on. The message in
hand is acknowledged only after all that (dramatiq acks after the actor returns), so a worker
killed mid-job leaves it unacknowledged and RabbitMQ delivers it again (the Redis broker does
so once the dead worker's heartbeat times out). Handlers are idempotent for that reason.

Delays are real milliseconds for the broker, converted from clock time by `real_delay_ms`. A
message that arrives before its clock time (a delay capped at `MAX_DELAY_MS`, clocks that
disagree) is sent back to wait for the rest, so a job never runs before `not_before`.
"""

from __future__ import annotations

import heapq
import logging
import math
import signal
import threading
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import dramatiq
import msgspec
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import TimeLimitExceeded

from cerniq_outreach.adapters.jobs_inline import UnknownJob
from cerniq_outreach.application.jobs import (
    DEFAULT_RETRY_POLICY,
    FAILED_COUNTER,
    JOB_NAMES,
    NonRetryable,
    RetryLater,
    RetryPolicy,
)
from cerniq_outreach.application.metrics import Counters

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from types import FrameType

    from cerniq_outreach.application.jobs import JobHandler, JobPayload
    from cerniq_outreach.application.ports import Clock

__all__ = [
    "MAX_DELAY_MS",
    "DramatiqJobQueue",
    "UnknownJob",
    "close_broker",
    "open_broker",
    "real_delay_ms",
    "run_worker",
    "start_worker",
]

MAX_DELAY_MS: Final = 24 * 3600 * 1000
"""The longest delay handed to the broker; a longer wait is served in legs of this length.

The Redis broker refuses delays past 7 days, and a worker holds delayed messages in memory
until they are due, so far-off jobs come back (and are sent off again) once a day instead.
"""

_STOP_POLL_SECONDS: Final = 0.2
_log = logging.getLogger(__name__)


def open_broker(url: str, *, namespace: str = "cerniq") -> dramatiq.Broker:
    """A dramatiq broker for `url`: RabbitMQ for `amqp(s)://`, Redis for `redis(s)://`.

    RabbitMQ confirms every publish (`confirm_delivery`), so `enqueue` returns only once the
    broker holds the job. `namespace` prefixes the Redis broker's keys.

    Raises:
        ValueError: the URL names another scheme.
    """
    scheme = urlsplit(url).scheme
    if scheme in {"amqp", "amqps"}:
        return RabbitmqBroker(url=url, confirm_delivery=True)
    if scheme in {"redis", "rediss"}:
        # dramatiq leaves RedisBroker.__init__ unannotated.
        return RedisBroker(url=url, namespace=namespace)  # type: ignore[no-untyped-call]
    # Only the scheme: the URL may carry a password.
    raise ValueError(f"no dramatiq broker for URL scheme {scheme!r} (amqp, amqps, redis, rediss)")


def close_broker(broker: dramatiq.Broker) -> None:
    """Close the broker's connections: RabbitMQ's, one per thread that used it, or Redis' pool."""
    broker.close()
    if isinstance(broker, RedisBroker):
        broker.client.connection_pool.disconnect()


def _stopped(clock: Clock) -> bool:
    speed = getattr(clock, "speed", 1.0)
    return isinstance(speed, int | float) and speed <= 0


def real_delay_ms(clock: Clock, until: datetime) -> int:
    """Real milliseconds until `clock` reads `until`; 0 when it is past, or the clock frozen.

    A clock with a `speed` (`SimulatedClock`) covers `speed` clock seconds per real second;
    any other clock follows real time. Rounded up, so a job is never let out early.
    """
    remaining = (until - clock.now()).total_seconds()
    speed = getattr(clock, "speed", 1.0)
    if remaining <= 0 or not isinstance(speed, int | float) or speed <= 0:
        return 0
    return math.ceil(remaining / speed * 1000)


class _Envelope(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One job on the wire: msgspec turns `raw` into base64 and `not_before` into ISO 8601."""

    job_id: str
    retries: int = 0
    not_before: datetime | None = None
    raw: bytes | None = None
    data: dict[str, Any] | None = None

    @property
    def payload(self) -> JobPayload:
        return self.raw if self.raw is not None else (self.data or {})


class DramatiqJobQueue:
    """JobQueue on a dramatiq broker: enqueue from any process, run in `run_worker`.

    One queue per broker instance: the actors are declared on `broker` (never dramatiq's
    global broker), so give each queue a broker of its own.

    Args:
        broker: from `open_broker`.
        queue_name: the broker queue every actor uses.
        clock: the time `not_before`, `RetryLater` and backoff are read against.
        handlers: what runs each job name in a worker; none in a producer.
        counters: where given-up jobs are counted (FAILED_COUNTER, labelled `job`).
        policy: retries and backoff of failing jobs.
    """

    def __init__(
        self,
        broker: dramatiq.Broker,
        *,
        queue_name: str = "cerniq",
        clock: Clock,
        handlers: Mapping[str, JobHandler] | None = None,
        counters: Counters | None = None,
        policy: RetryPolicy = DEFAULT_RETRY_POLICY,
    ) -> None:
        self._broker = broker
        self.queue_name = queue_name
        self._clock = clock
        self._handlers = dict(handlers or {})
        self._counters = counters if counters is not None else Counters()
        self._policy = policy
        # With dramatiq's Retries middleware present, its own retries are switched off: this
        # wrapper retries. Should the wrapper itself raise (it could not re-enqueue), the
        # message is dead-lettered instead of retried a second way.
        options: dict[str, Any] = (
            {"max_retries": 0} if "max_retries" in broker.actor_options else {}
        )
        self._held: list[tuple[datetime, int, str, _Envelope]] = []
        self._held_lock = threading.Lock()
        self._held_seq = 0
        self._actors: dict[str, dramatiq.Actor[[dict[str, Any]], None]] = {}
        for name in dict.fromkeys((*JOB_NAMES, *self._handlers)):
            declare = dramatiq.actor(
                actor_name=name, queue_name=queue_name, broker=broker, **options
            )
            self._actors[name] = declare(self._actor_function(name))

    @property
    def broker(self) -> dramatiq.Broker:
        """The broker the actors are declared on (hand it to `run_worker`)."""
        return self._broker

    def enqueue(
        self, job_name: str, payload: JobPayload, *, not_before: datetime | None = None
    ) -> None:
        """Queue one job, to run at once or not before `not_before` (clock time).

        Returns once the broker holds it (RabbitMQ confirms the publish).

        Raises:
            UnknownJob: no actor is declared under `job_name`.
            ValueError: `not_before` is a naive datetime.
            TypeError: the payload is neither bytes nor a dict of JSON values.
            dramatiq.errors.ConnectionError: the broker cannot be reached.
        """
        if job_name not in self._actors:
            raise UnknownJob(job_name)
        if not_before is not None and (not_before.tzinfo is None or not_before.utcoffset() is None):
            raise ValueError(f"a timezone-aware not_before is needed, not {not_before.isoformat()}")
        if isinstance(payload, bytes):
            envelope = _Envelope(job_id=uuid.uuid4().hex, raw=payload, not_before=not_before)
        elif isinstance(payload, dict):
            envelope = _Envelope(job_id=uuid.uuid4().hex, data=payload, not_before=not_before)
        else:
            raise TypeError(f"a job payload is bytes or a dict, not {type(payload).__name__}")
        self._schedule(job_name, envelope, not_before)

    # --- the worker side --------------------------------------------------------------------

    def _actor_function(self, name: str) -> Callable[[dict[str, Any]], None]:
        def run(envelope: dict[str, Any]) -> None:
            self._run(name, envelope)

        run.__name__ = run.__qualname__ = f"job:{name}"
        return run

    def _schedule(self, name: str, envelope: _Envelope, at: datetime | None) -> None:
        """Send now, or with the broker's delay until `at`; held here if the clock is stopped.

        A stopped clock (the demo's, moved by its driver) has no real delay to give the
        broker: the job waits in this process until `release_due` finds its time come.
        """
        if at is not None and at > self._clock.now() and _stopped(self._clock):
            with self._held_lock:
                self._held_seq += 1
                heapq.heappush(self._held, (at, self._held_seq, name, envelope))
            return
        delay = real_delay_ms(self._clock, at) if at is not None else 0
        self._send(name, envelope, delay)

    def release_due(self) -> int:
        """Send the jobs held for a stopped clock whose time has come; returns how many."""
        now = self._clock.now()
        due: list[tuple[str, _Envelope]] = []
        with self._held_lock:
            while self._held and self._held[0][0] <= now:
                _, _, name, envelope = heapq.heappop(self._held)
                due.append((name, envelope))
        for name, envelope in due:
            self._send(name, envelope, 0)
        return len(due)

    def next_due(self) -> datetime | None:
        """When the earliest held job comes due (None: none held)."""
        with self._held_lock:
            return self._held[0][0] if self._held else None

    def drain(self, worker: dramatiq.Worker, queue_name: str) -> None:
        """Wait until the queue is empty and `worker` idle (a driver's step, in one process)."""
        broker = self._broker
        if isinstance(broker, RabbitmqBroker):
            broker.join(queue_name, min_successes=1, idle_time=5)
        elif isinstance(broker, RedisBroker):
            broker.join(queue_name, interval=5)
        else:  # pragma: no cover - open_broker makes one of the two
            broker.join(queue_name)
        worker.join()

    def _send(self, name: str, envelope: _Envelope, delay_ms: int) -> None:
        self._actors[name].send_with_options(
            args=(msgspec.to_builtins(envelope),), delay=min(delay_ms, MAX_DELAY_MS) or None
        )

    def _run(self, name: str, message: dict[str, Any]) -> None:
        try:
            envelope = msgspec.convert(message, _Envelope)
        except msgspec.ValidationError:
            self._counters.inc(FAILED_COUNTER, job=name)
            _log.exception("job message unreadable, dead-lettered", extra={"job": name})
            raise
        log_extra = {"job": name, "job_id": envelope.job_id, "retries": envelope.retries}
        if envelope.not_before is not None and envelope.not_before > self._clock.now():
            self._schedule(name, envelope, envelope.not_before)
            return
        handler = self._handlers.get(name)
        if handler is None:
            # A worker without this job's handler: keep the message (dead-lettered) for a
            # worker that has it, rather than drop it.
            self._counters.inc(FAILED_COUNTER, job=name)
            _log.error("no handler for job, dead-lettered", extra=log_extra)
            raise UnknownJob(name)
        try:
            handler(envelope.payload)
        except RetryLater as later:
            if later.at.tzinfo is None or later.at.utcoffset() is None:
                _log.exception("job deferred to a naive time, given up", extra=log_extra)
                self._counters.inc(FAILED_COUNTER, job=name)
                return
            _log.info(
                "job deferred",
                extra={**log_extra, "at": later.at.isoformat(), "reason": later.reason},
            )
            deferred = msgspec.structs.replace(envelope, not_before=later.at)
            self._schedule(name, deferred, later.at)
        except NonRetryable:
            _log.exception("job failed, not retryable", extra=log_extra)
            self._counters.inc(FAILED_COUNTER, job=name)
        # dramatiq's TimeLimit middleware interrupts a handler still running after its limit
        # (10 minutes by default) with an exception outside `Exception`: a failure like others.
        except (Exception, TimeLimitExceeded):  # noqa: BLE001 - any other failure may pass: retry it
            retries = envelope.retries + 1
            if retries > self._policy.max_retries:
                _log.exception("job failed, out of retries", extra=log_extra)
                self._counters.inc(FAILED_COUNTER, job=name)
                return
            backoff = self._policy.backoff(retries)
            _log.warning(
                "job failed, will retry", exc_info=True, extra={**log_extra, "backoff": backoff}
            )
            at = self._clock.now() + timedelta(seconds=backoff)
            retry = msgspec.structs.replace(envelope, retries=retries, not_before=at)
            self._schedule(name, retry, at)


def start_worker(
    broker: dramatiq.Broker, threads: int = 8, *, idle_timeout_ms: int = 1000
) -> dramatiq.Worker:
    """Start a dramatiq worker in this process on the queues of the broker's actors.

    Stop it with `worker.stop()` (running jobs finish; prefetched ones go back to the broker).
    dramatiq runs one worker per process. `idle_timeout_ms` is how long an idle worker or
    consumer thread waits before it looks again (and so how long stopping may take).
    """
    worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=idle_timeout_ms)
    worker.start()
    return worker


def run_worker(
    broker: dramatiq.Broker, *, threads: int = 8, stop: threading.Event | None = None
) -> None:
    """Run a worker in this process until `stop` is set, or SIGTERM or SIGINT arrives.

    The signal handlers are installed only when called from the main thread (Python allows
    no other) and restored on return. The worker then stops gracefully: running jobs finish.
    """
    stop = stop if stop is not None else threading.Event()
    signalled: list[int] = []
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            # Only a list append: a handler that took a lock (`Event.set`) could deadlock
            # against the very wait it interrupts.
            signalled.append(signum)

        for received in (signal.SIGTERM, signal.SIGINT):
            previous[received] = signal.signal(received, on_signal)
    try:
        worker = start_worker(broker, threads)
        _log.info("worker started", extra={"threads": threads})
        try:
            while not signalled and not stop.wait(_STOP_POLL_SECONDS):
                continue
            _log.info("worker stopping", extra={"signal": signalled[0] if signalled else None})
        finally:
            worker.stop()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
