"""The job queue contract, run against every adapter: a handler's ending decides what follows.

In-process threads (on a running clock, and on a frozen one moved by hand as the demo loop
does) and dramatiq on the test broker (RabbitMQ or Redis, whichever CERNIQ_TEST_BROKER_URL
names; enqueued by a producer without handlers, run by a worker in this process) must agree:
a job runs once with what was enqueued; a failure is retried with backoff until it succeeds
or runs out of retries (then it is counted and dropped); `NonRetryable` is counted at once;
`RetryLater` waits without spending a retry; nothing runs before its `not_before`; an unknown
job name is refused at enqueue.

Waits are on conditions with generous deadlines: every recorded run and every counted
failure wakes the waiting test. The simulated clock runs an hour per real second, so a
30-minute wait is half a real second on a running clock.
"""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from cerniq_outreach.adapters.clock import SimulatedClock
from cerniq_outreach.adapters.jobs_dramatiq import (
    DramatiqJobQueue,
    close_broker,
    open_broker,
    start_worker,
)
from cerniq_outreach.adapters.jobs_inline import InlineJobQueue, UnknownJob
from cerniq_outreach.application.jobs import (
    ANALYSE_REPLY,
    DAILY_STATS,
    FAILED_COUNTER,
    SEND_WHATSAPP,
    NonRetryable,
    RetryLater,
    RetryPolicy,
)
from cerniq_outreach.application.metrics import Counters

import services

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from cerniq_outreach.application.jobs import JobHandler, JobPayload

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
SPEED = 3600.0
WAIT = timedelta(minutes=30)
DEADLINE_SECONDS = 20.0
FAST_RETRIES = RetryPolicy(max_retries=2, min_backoff_seconds=0.01, max_backoff_seconds=0.05)

JOB = SEND_WHATSAPP
OTHER = ANALYSE_REPLY
BARRIER = DAILY_STATS  # the dramatiq harness's "everything before me has run" job

ADAPTERS = [
    "inline",
    "inline-frozen-clock",
    pytest.param("dramatiq", marks=pytest.mark.broker),
]


class Runs:
    """Every run of every job (what it was given, the clock time it saw); wakes waiters."""

    def __init__(self, clock: SimulatedClock) -> None:
        self._clock = clock
        self.changed = threading.Condition()
        self._runs: dict[str, list[tuple[JobPayload, datetime]]] = defaultdict(list)

    def handler(self, name: str, then: Callable[[int], None] | None = None) -> JobHandler:
        """A handler that records its run, then calls `then(attempt)` (which may raise)."""

        def handle(payload: JobPayload) -> None:
            with self.changed:
                self._runs[name].append((payload, self._clock.now()))
                attempt = len(self._runs[name])
                self.changed.notify_all()
            if then is not None:
                then(attempt)

        return handle

    def count(self, name: str) -> int:
        with self.changed:
            return len(self._runs[name])

    def payloads(self, name: str) -> list[JobPayload]:
        with self.changed:
            return [payload for payload, _ in self._runs[name]]

    def times(self, name: str) -> list[datetime]:
        with self.changed:
            return [seen for _, seen in self._runs[name]]


class NotifyingCounters(Counters):
    """The real counters, waking the waiting test on every increment."""

    def __init__(self, changed: threading.Condition) -> None:
        super().__init__()
        self._changed = changed

    def inc(self, name: str, amount: int = 1, **labels: str) -> None:
        super().inc(name, amount, **labels)
        with self._changed:
            self._changed.notify_all()


class Harness:
    """One adapter, its clock and counters, and the test's ways to wait on it."""

    def __init__(self, kind: str, request: pytest.FixtureRequest, stack: ExitStack) -> None:
        self.kind = kind
        self.clock = SimulatedClock(T0, speed=0 if kind == "inline-frozen-clock" else SPEED)
        self.runs = Runs(self.clock)
        self.counters = NotifyingCounters(self.runs.changed)
        self._request = request
        self._stack = stack
        self._inline: InlineJobQueue | None = None
        self._producer: DramatiqJobQueue | None = None
        self._barriers = 0

    def start(self, handlers: Mapping[str, JobHandler], policy: RetryPolicy = FAST_RETRIES):
        """Build the queue with `handlers` and start its workers."""
        if self.kind.startswith("inline"):
            self._inline = InlineJobQueue(
                handlers,
                self.counters,
                clock=self.clock,
                workers=2,
                policy=policy,
                release_thread=self.kind == "inline",
            )
            self._stack.callback(self._inline.close)
            return
        url = self._request.getfixturevalue("broker_url")
        prefix = self._request.getfixturevalue("broker_prefix")
        queue_name = prefix.queue(f"jobs-{services.new_token()}")
        worker_broker = open_broker(url, namespace=str(prefix))
        self._stack.callback(close_broker, worker_broker)
        DramatiqJobQueue(
            worker_broker,
            queue_name=queue_name,
            clock=self.clock,
            handlers={**handlers, BARRIER: self.runs.handler(BARRIER)},
            counters=self.counters,
            policy=policy,
        )
        worker = start_worker(worker_broker, 2, idle_timeout_ms=100)
        self._stack.callback(worker.stop)
        # Jobs are enqueued as an API process would: a broker of its own, no handlers.
        producer_broker = open_broker(url, namespace=str(prefix))
        self._stack.callback(close_broker, producer_broker)
        self._producer = DramatiqJobQueue(producer_broker, queue_name=queue_name, clock=self.clock)

    def enqueue(self, name: str, payload: JobPayload, *, not_before: datetime | None = None):
        target = self._inline if self._inline is not None else self._producer
        assert target is not None, "start() the harness first"
        target.enqueue(name, payload, not_before=not_before)

    def wait_for(self, condition: Callable[[], bool], what: str) -> None:
        """Return once `condition` holds, letting clock time pass as the adapter needs."""
        if self.kind == "inline-frozen-clock":
            self._drive_frozen_clock(condition, what)
            return
        with self.runs.changed:
            met = self.runs.changed.wait_for(condition, timeout=DEADLINE_SECONDS)
        assert met, f"still waiting for {what} after {DEADLINE_SECONDS} s"

    def settle(self) -> None:
        """Return once every job enqueued so far that could run has run."""
        if self._inline is not None:
            self._inline.join()
            return
        self._barriers += 1
        marker = {"barrier": self._barriers}
        self.enqueue(BARRIER, marker)
        self.wait_for(lambda: marker in self.runs.payloads(BARRIER), "the barrier job")

    def _drive_frozen_clock(self, condition: Callable[[], bool], what: str) -> None:
        # The demo loop's way: run what is runnable, then move the clock to the next due job.
        inline = self._inline
        assert inline is not None
        for _ in range(1000):
            inline.join()
            with self.runs.changed:
                if condition():
                    return
            due = inline.next_due()
            assert due is not None, f"nothing left to run, still waiting for {what}"
            self.clock.advance(max(due - self.clock.now(), timedelta(0)))
            inline.release_due()
        pytest.fail(f"still waiting for {what} after 1000 moves of the clock")


@pytest.fixture(params=ADAPTERS)
def jobs(request):
    with ExitStack() as stack:
        yield Harness(request.param, request, stack)


def failing_until(success: int) -> Callable[[int], None]:
    """Raises a transient error on every attempt before attempt number `success`."""

    def then(attempt: int) -> None:
        if attempt < success:
            raise ConnectionError(f"provider unreachable (attempt {attempt})")

    return then


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(
            {"lead_id": "lead-1", "step": 2, "tags": {"a": [1, 2.5, None, True]}}, id="dict"
        ),
        pytest.param(b'\x00\xff{"raw": "webhook body"}\n', id="bytes"),
    ],
)
def test_a_job_runs_once_with_what_was_enqueued(jobs, payload):
    """A job runs exactly once, and its handler gets the payload as enqueued (bytes stay bytes)."""
    jobs.start({JOB: jobs.runs.handler(JOB)})

    jobs.enqueue(JOB, payload)
    jobs.wait_for(lambda: jobs.runs.count(JOB) >= 1, "the job to run")
    jobs.settle()

    assert jobs.runs.payloads(JOB) == [payload]
    assert jobs.counters.total(FAILED_COUNTER) == 0


def test_a_failing_job_is_retried_until_it_succeeds(jobs):
    """A handler that fails twice then succeeds runs three times and is not counted as failed."""
    jobs.start({JOB: jobs.runs.handler(JOB, failing_until(3))})

    jobs.enqueue(JOB, {"lead_id": "lead-2"})
    jobs.wait_for(lambda: jobs.runs.count(JOB) >= 3, "the third attempt")
    jobs.settle()

    assert jobs.runs.payloads(JOB) == [{"lead_id": "lead-2"}] * 3
    times = jobs.runs.times(JOB)
    assert times == sorted(times)
    assert jobs.counters.value(FAILED_COUNTER, job=JOB) == 0


def test_a_job_out_of_retries_is_counted_and_not_run_again(jobs):
    """Past `max_retries` a failing job is counted once in FAILED_COUNTER and dropped."""
    jobs.start({JOB: jobs.runs.handler(JOB, failing_until(10**6))})

    jobs.enqueue(JOB, {"lead_id": "lead-3"})
    jobs.wait_for(lambda: jobs.counters.value(FAILED_COUNTER, job=JOB) >= 1, "the job counted")
    jobs.settle()

    assert jobs.runs.count(JOB) == FAST_RETRIES.max_retries + 1
    assert jobs.counters.value(FAILED_COUNTER, job=JOB) == 1


def test_a_non_retryable_failure_runs_once_and_is_counted(jobs):
    """`NonRetryable` is never retried: one run, one count."""

    def refuse(_attempt: int) -> None:
        raise NonRetryable("the template does not exist")

    jobs.start({JOB: jobs.runs.handler(JOB, refuse)})

    jobs.enqueue(JOB, {"lead_id": "lead-4"})
    jobs.wait_for(lambda: jobs.counters.value(FAILED_COUNTER, job=JOB) >= 1, "the job counted")
    jobs.settle()

    assert jobs.runs.count(JOB) == 1
    assert jobs.counters.value(FAILED_COUNTER, job=JOB) == 1


def test_retry_later_runs_the_job_again_at_its_time_without_spending_a_retry(jobs):
    """`RetryLater(at)` runs the job again once the clock reaches `at`; no retry is spent."""
    asked: list[datetime] = []

    def defer_twice(attempt: int) -> None:
        if attempt <= 2:
            asked.append(jobs.clock.now() + WAIT)
            raise RetryLater(asked[-1], "outside business hours")

    # No retries at all: were a deferral counted as one, the job would be dropped.
    jobs.start({JOB: jobs.runs.handler(JOB, defer_twice)}, policy=RetryPolicy(max_retries=0))

    jobs.enqueue(JOB, {"lead_id": "lead-5"})
    jobs.wait_for(lambda: jobs.runs.count(JOB) >= 3, "the third run")
    jobs.settle()

    times = jobs.runs.times(JOB)
    assert len(times) == 3
    assert times[1] >= asked[0]
    assert times[2] >= asked[1]
    assert jobs.counters.value(FAILED_COUNTER, job=JOB) == 0


def test_a_job_never_runs_before_its_not_before(jobs):
    """A job enqueued with `not_before` runs once the clock has reached it, and not earlier."""
    jobs.start({JOB: jobs.runs.handler(JOB), OTHER: jobs.runs.handler(OTHER)})
    at = jobs.clock.now() + WAIT

    jobs.enqueue(JOB, {"lead_id": "lead-6"}, not_before=at)
    jobs.enqueue(OTHER, {"lead_id": "lead-7"})
    jobs.wait_for(
        lambda: jobs.runs.count(JOB) >= 1 and jobs.runs.count(OTHER) >= 1, "both jobs to run"
    )
    jobs.settle()

    assert jobs.runs.times(JOB)[0] >= at
    assert jobs.runs.payloads(JOB) == [{"lead_id": "lead-6"}]
    assert jobs.runs.payloads(OTHER) == [{"lead_id": "lead-7"}]


def test_an_unknown_job_is_refused_at_enqueue(jobs):
    """A job name nothing is registered under is refused by `enqueue`, not lost in a worker."""
    jobs.start({JOB: jobs.runs.handler(JOB)})

    with pytest.raises(UnknownJob):
        jobs.enqueue("no.such.job", {"lead_id": "lead-8"})


# --- dramatiq only: a worker process, stopped gracefully or killed -------------------------

_WORKER_SCRIPT = """
import logging, sys
from cerniq_outreach.adapters.clock import SystemClock
from cerniq_outreach.adapters.jobs_dramatiq import DramatiqJobQueue, open_broker, run_worker

def say(line):
    sys.stdout.write(line + "\\n")  # one write per line: threads print too
    sys.stdout.flush()

def hold(payload):
    say("running " + payload["lead_id"])
    sys.stdin.readline()  # until the test says go
    say("done " + payload["lead_id"])

# The adapter's own log lines on stdout (the test waits on them), the rest on stderr.
logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
ours = logging.getLogger("cerniq_outreach.adapters.jobs_dramatiq")
ours.setLevel(logging.INFO)
ours.addHandler(logging.StreamHandler(sys.stdout))
ours.propagate = False

url, queue_name, namespace, job = sys.argv[1:5]
broker = open_broker(url, namespace=namespace)
DramatiqJobQueue(broker, queue_name=queue_name, clock=SystemClock(), handlers={job: hold})
run_worker(broker, threads=1)
"""


class WorkerProcess:
    """`run_worker` in a child process; its handler for JOB waits for a line on stdin."""

    def __init__(self, stack: ExitStack, url: str, queue_name: str, namespace: str, log_path):
        self._log_path = log_path
        log = stack.enter_context(log_path.open("w"))
        self.process = stack.enter_context(
            subprocess.Popen(  # noqa: S603 - this interpreter, a fixed script
                [sys.executable, "-c", _WORKER_SCRIPT, url, queue_name, namespace, JOB],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        )
        self._lines: queue.Queue[str] = queue.Queue()
        reader = threading.Thread(target=self._read, daemon=True)
        reader.start()
        # Undone in reverse: kill, reap, let the reader see EOF, then close the pipes.
        stack.callback(reader.join, DEADLINE_SECONDS)
        stack.callback(self.process.wait, DEADLINE_SECONDS)
        stack.callback(self.process.kill)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line.strip())

    def expect(self, wanted: str) -> None:
        """Wait until the child prints the line `wanted` (other lines are skipped)."""
        deadline = time.monotonic() + DEADLINE_SECONDS
        seen: list[str] = []
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                printed, logged = "\n".join(seen), self._log_path.read_text()
                pytest.fail(f"no {wanted!r} from the worker; stdout:\n{printed}\nstderr:\n{logged}")
            if line == wanted:
                return
            seen.append(line)

    def release_job(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()


@pytest.mark.broker
def test_a_worker_stopped_by_sigterm_finishes_its_running_job_first(
    broker_url, broker_prefix, tmp_path
):
    """SIGTERM stops `run_worker` gracefully: the job in hand completes, then it exits with 0."""
    queue_name = broker_prefix.queue(f"jobs-{services.new_token()}")
    clock = SimulatedClock(T0, speed=SPEED)
    with ExitStack() as stack:
        producer_broker = open_broker(broker_url, namespace=str(broker_prefix))
        stack.callback(close_broker, producer_broker)
        producer = DramatiqJobQueue(producer_broker, queue_name=queue_name, clock=clock)
        worker = WorkerProcess(
            stack, broker_url, queue_name, str(broker_prefix), tmp_path / "worker.log"
        )

        producer.enqueue(JOB, {"lead_id": "lead-10"})
        worker.expect("running lead-10")
        worker.process.send_signal(signal.SIGTERM)
        worker.expect("worker stopping")
        worker.release_job()
        worker.expect("done lead-10")
        exit_code = worker.process.wait(timeout=DEADLINE_SECONDS)

    assert exit_code == 0


@pytest.mark.broker
def test_the_job_of_a_killed_worker_runs_again_on_another(broker_url, broker_prefix, tmp_path):
    """A worker SIGKILLed mid-job never acknowledged it: RabbitMQ gives it to the next worker."""
    if not services.is_amqp(broker_url):
        pytest.skip("the Redis broker redelivers only after a 60 s heartbeat timeout")
    queue_name = broker_prefix.queue(f"jobs-{services.new_token()}")
    clock = SimulatedClock(T0, speed=SPEED)
    runs = Runs(clock)
    with ExitStack() as stack:
        producer_broker = open_broker(broker_url)
        stack.callback(close_broker, producer_broker)
        producer = DramatiqJobQueue(producer_broker, queue_name=queue_name, clock=clock)
        killed = WorkerProcess(stack, broker_url, queue_name, "cerniq", tmp_path / "worker.log")

        producer.enqueue(JOB, {"lead_id": "lead-9"})
        killed.expect("running lead-9")
        killed.process.kill()
        killed.process.wait(timeout=DEADLINE_SECONDS)

        worker_broker = open_broker(broker_url)
        stack.callback(close_broker, worker_broker)
        DramatiqJobQueue(
            worker_broker, queue_name=queue_name, clock=clock, handlers={JOB: runs.handler(JOB)}
        )
        worker = start_worker(worker_broker, 1, idle_timeout_ms=100)
        stack.callback(worker.stop)
        with runs.changed:
            rerun = runs.changed.wait_for(lambda: runs.count(JOB) >= 1, DEADLINE_SECONDS)

    assert rerun, "the killed worker's job was not delivered again"
    assert runs.payloads(JOB) == [{"lead_id": "lead-9"}]
