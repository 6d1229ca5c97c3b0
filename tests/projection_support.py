"""Helpers for the read-model tests.

A journey driver that appends to a real store, read-model databases to project into, and
random multi-lead sessions for the property tests.
"""

from __future__ import annotations

import itertools
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

from cerniq_outreach.adapters.eventstore.memory import MemoryEventStore
from cerniq_outreach.adapters.eventstore.sqlite_database import SqliteReadModels
from cerniq_outreach.adapters.migrations import migrate_sqlite_connection
from cerniq_outreach.adapters.vault import MemoryVault
from cerniq_outreach.application.differences import normalise
from cerniq_outreach.application.projections import (
    ALL_PROJECTIONS,
    FOLLOWER_PROJECTIONS,
    INLINE_PROJECTIONS,
)
from cerniq_outreach.application.projector import Projector
from cerniq_outreach.domain import commands as c
from cerniq_outreach.domain.decide import decide
from cerniq_outreach.domain.enums import (
    BounceKind,
    Channel,
    JourneyState,
    OptOutScope,
    Priority,
    ReplyTrigger,
    ReviewReason,
    ReviewResolution,
    SentimentLabel,
)
from cerniq_outreach.domain.errors import DomainError
from cerniq_outreach.domain.events import Company
from cerniq_outreach.domain.journey import Journey, replay
from cerniq_outreach.domain.outbound import whatsapp_cost

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # Monday 10:00 in Bucharest
_ids = itertools.count()


def sqlite_connection() -> sqlite3.Connection:
    """A fresh in-memory database with every migration applied."""
    conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    migrate_sqlite_connection(conn)
    return conn


def sqlite_read_models() -> SqliteReadModels:
    """A fresh in-memory read-model database with every migration applied."""
    return SqliteReadModels(sqlite_connection())


def rows(db, table: str, tenant: str | None = None, **where) -> list[dict]:
    """A table's rows (comparable form), sorted; optionally filtered by column values."""
    with db.transaction() as tx:
        found = normalise(tx.fetchall(f"SELECT * FROM {table}"))  # noqa: S608 - test tables
    if tenant is not None:
        where["tenant_id"] = tenant
    found = [r for r in found if all(r.get(k) == v for k, v in where.items())]
    return sorted(found, key=repr)


def snapshot(db, projections=ALL_PROJECTIONS) -> dict[str, list[dict]]:
    """Every table of `projections`, for comparing two databases."""
    return {t: rows(db, t) for p in projections for t in p.tables}


@dataclass
class World:
    """A memory event store with the inline projections, and a projector for the rest."""

    conn: sqlite3.Connection = field(default_factory=sqlite_connection)
    vault: MemoryVault = field(default_factory=MemoryVault)

    def __post_init__(self) -> None:
        self.db = SqliteReadModels(self.conn)
        self.store = MemoryEventStore(
            self.vault, inline_projections=INLINE_PROJECTIONS, read_models=self.db
        )
        self.projector = Projector(self.store, self.db, FOLLOWER_PROJECTIONS)

    def lead(self, lead_id: str = "lead-1", tenant: str = "t1", **kw) -> Lead:
        return Lead(self.store, tenant=tenant, lead_id=lead_id, **kw)

    def project(self) -> int:
        return self.projector.catch_up(batch=7)


class Lead:
    """Runs commands through `decide` and appends their events to a store."""

    def __init__(
        self,
        store,
        *,
        tenant: str = "t1",
        lead_id: str = "lead-1",
        company: Company | None = None,
        sequence_id: str = "cold",
        at: datetime = T0,
        enrol: bool = True,
    ) -> None:
        self.store = store
        self.tenant = tenant
        self.lead_id = lead_id
        self.state = Journey()
        self.now = at
        self.events: list = []
        if enrol:
            self.do(
                c.Enroll,
                tenant_id=tenant,
                lead_id=lead_id,
                sequence_id=sequence_id,
                company=company
                or Company(
                    name="Ferma Bănățeană SRL",
                    fiscal_code="RO123456",
                    county="Timiș",
                    contact_name="Ion Popescu",
                    phone="+40722123456",
                    email="ion@ferma.ro",
                ),
            )

    def do(self, cls, **fields) -> list:
        """Decide and append; raises the domain error of a refused command."""
        command = cls(command_id=f"cmd-{next(_ids)}", at=self.now, **fields)
        new = decide(self.state, command)
        if new:
            self.store.append(self.tenant, self.lead_id, new, expected_version=self.state.version)
        self.events += new
        self.state = replay(new, self.state)
        return new

    def attempt(self, cls, **fields) -> list:
        """`do`, but a refused command appends nothing and returns []."""
        try:
            return self.do(cls, **fields)
        except DomainError:
            return []

    def wait(self, **delta) -> None:
        self.now += timedelta(**delta)

    def queue(self, message_id: str, channel=Channel.WHATSAPP, step: int | None = 1, **kw):
        automated = step is not None
        phone = kw.pop("phone", "phone-1")
        return self.do(
            c.QueueMessage,
            message_id=message_id,
            channel=channel,
            content_hash=f"h-{message_id}",
            sequence_id=kw.pop("sequence_id", self.state.sequence_id) if automated else None,
            step=step,
            template_id=kw.pop("template_id", "tpl-1"),
            template_version=kw.pop("template_version", 1),
            quota_cost=whatsapp_cost(self.state) if channel is Channel.WHATSAPP else 0,
            phone_id=phone if channel is Channel.WHATSAPP else None,
            **kw,
        )

    def send(self, message_id: str):
        return self.do(
            c.RecordSent, message_id=message_id, provider="sandbox", external_id=f"x-{message_id}"
        )


# --- random sessions (property tests) ------------------------------------------------------

KINDS = (
    "queue",
    "send",
    "delivered",
    "read",
    "opened",
    "clicked",
    "bounce",
    "fail",
    "cancel",
    "reply",
    "score",
    "review",
    "resolve",
    "opt_out",
    "pause",
    "resume",
    "take",
    "release",
    "transition",
    "start",
    "exhaust",
    "reassign",
    "wait",
)

# The message flow is drawn most often; the steps that end a journey (opt-out, exhaust,
# transition) least, or most sessions would be over after a few steps.
_WEIGHTS = {"queue": 6, "send": 8, "resolve": 4, "release": 3, "delivered": 2, "read": 2}
_WEIGHTS |= {"reply": 2, "wait": 2, "opt_out": 1, "exhaust": 1, "transition": 1, "score": 1}
_DRAWN = tuple(k for k in KINDS for _ in range(_WEIGHTS.get(k, 1 if k in _WEIGHTS else 2)))

# (lead index, kind, pick, flag, choice, score): `pick` chooses among the lead's messages or
# reviews, `choice` among a kind's options; plain integers shrink well.
steps = st.tuples(
    st.integers(0, 3),
    st.sampled_from(_DRAWN),
    st.integers(0, 5),
    st.booleans(),
    st.integers(0, 9),
    st.integers(-100, 100),
)
sessions = st.lists(steps, min_size=20, max_size=100)

_FACTS = {
    "delivered": c.RecordDelivered,
    "read": c.RecordRead,
    "opened": c.RecordOpened,
    "clicked": c.RecordClicked,
}
_OUTBOUND = (Channel.WHATSAPP, Channel.EMAIL_COLD, Channel.EMAIL_WARM)
_TRIGGERS = (frozenset(), frozenset(), frozenset({ReplyTrigger.COMPLAINT}), frozenset())
_TRIGGERS += (frozenset({ReplyTrigger.OPT_OUT}), frozenset({ReplyTrigger.WRONG_PERSON}))
_TARGETS = (JourneyState.NEGOTIATION, JourneyState.CONVERTED, JourneyState.DEAD)


def _pick(items: list, pick: int):
    return items[pick % len(items)] if items else "never-queued"


def play_step(lead: Lead, step) -> list:  # noqa: C901, PLR0911, PLR0912 - one arm per kind
    """Run one random step on `lead` (refused commands append nothing)."""
    _, kind, pick, flag, choice, score = step
    s = lead.state
    messages = list(s.messages)
    sent = [m.message_id for m in s.messages.values() if m.sent_at is not None]
    pending = [m.message_id for m in s.messages.values() if m.pending]
    match kind:
        case "queue":
            channel = _OUTBOUND[choice % 3]
            step_no = None if choice >= 7 else 1 + pick % 4
            mid = f"{lead.lead_id}-m{len(messages)}"
            try:
                phone = s.phone_id or f"phone-{1 + pick % 2}"  # sticky once assigned
                return lead.queue(mid, channel, step_no, phone=phone)
            except DomainError:
                return []
        case "send":
            return lead.attempt(
                c.RecordSent, message_id=_pick(pending, pick), provider="p", external_id="x"
            )
        case "delivered" | "read" | "opened" | "clicked":
            return lead.attempt(_FACTS[kind], message_id=_pick(sent, pick))
        case "bounce":
            kind_ = BounceKind.HARD if flag else BounceKind.SOFT
            return lead.attempt(c.RecordBounce, message_id=_pick(sent, pick), kind=kind_)
        case "fail":
            return lead.attempt(
                c.RecordFailure, message_id=_pick(pending, pick), reason="r", permanent=flag
            )
        case "cancel":
            return lead.attempt(c.CancelMessage, message_id=_pick(pending, pick), reason="r")
        case "reply":
            ooo = lead.now + timedelta(days=2) if flag and choice < 3 else None
            return lead.attempt(
                c.ReceiveReply,
                channel=_OUTBOUND[choice % 3],
                external_id=f"in-{len(lead.events)}",
                text=f"Bună ziua, {score}",
                content_hash="hr",
                out_of_office_until=ooo,
            )
        case "score":
            label = list(SentimentLabel)[choice % 3]
            return lead.attempt(
                c.ScoreSentiment,
                score=score,
                label=label,
                confidence=0.4 if flag else 0.9,
                triggers=_TRIGGERS[choice % len(_TRIGGERS)],
            )
        case "review":
            return lead.attempt(
                c.RequestReview,
                reason=list(ReviewReason)[choice % 6],
                priority=list(Priority)[pick % 4],
            )
        case "resolve":
            return lead.attempt(
                c.ResolveReview,
                review_id=_pick(list(s.open_reviews), pick),
                resolution=list(ReviewResolution)[choice % 6],
                resolved_by="ana",
            )
        case "opt_out":
            return lead.attempt(c.OptOut, scope=list(OptOutScope)[choice % 3], source="link")
        case "pause":
            return lead.attempt(c.Pause, by="ana")
        case "resume":
            return lead.attempt(c.Resume, by="ana")
        case "take":
            return lead.attempt(c.TakeControl, user="mihai")
        case "release":
            return lead.attempt(c.ReleaseControl, user="mihai")
        case "transition":
            return lead.attempt(c.Transition, to=_TARGETS[choice % 3], reason="r", by="ana")
        case "start":
            return lead.attempt(c.StartSequence, sequence_id=f"warm-{pick % 2}", by="ana")
        case "exhaust":
            return lead.attempt(c.ExhaustSequence)
        case "reassign":
            return lead.attempt(c.ReassignPhone, phone_id=f"phone-{3 + pick % 2}", reason="ban")
        case _:
            lead.wait(hours=1 + score % 40)
            return []
