"""The lead journey, as a state machine driven by random commands and provider events.

Hypothesis plays long random sessions against `decide`/`evolve` and, after every step,
checks the invariants of domain.md against an independent reading of the log
(`journey_oracle.check_log`) and against the fold.
"""

from __future__ import annotations

import itertools

from hypothesis import event as note
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from cerniq_outreach.domain import commands as c
from cerniq_outreach.domain.decide import decide
from cerniq_outreach.domain.enums import (
    TERMINAL_STATES,
    Channel,
    JourneyState,
    OptOutScope,
    ReplyTrigger,
    ReviewResolution,
)
from cerniq_outreach.domain.errors import DomainError
from cerniq_outreach.domain.events import (
    Event,
    MessageQueued,
    ReviewRequested,
    SequenceSnoozed,
    SequenceStopped,
)
from cerniq_outreach.domain.journey import Journey, replay
from cerniq_outreach.domain.outbound import whatsapp_cost
from cerniq_outreach.domain.transitions import targets_from

from journey_oracle import check_log
from strategies import (
    EPOCH,
    bounce_kinds,
    channels,
    companies,
    confidences,
    labels,
    outbound_channels,
    phone_ids,
    priorities,
    reasons,
    resolutions,
    scopes,
    scores,
    sequence_ids,
    states,
    step_numbers,
    texts,
    time_steps,
    triggers,
    users,
)


class JourneyMachine(RuleBasedStateMachine):
    """Random sessions of one lead's journey; every invariant holds after every step."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[Event] = []
        self.state = Journey()
        self.now = EPOCH
        self.message_ids: list[str] = ["never-queued"]
        self.review_ids: list[str] = ["never-opened"]
        self.terminal_seen = False
        # Ids count from 0 in every example: derived ids (reviews) then sort the same way
        # when hypothesis replays an example, so its draws replay too (a counter shared by
        # all examples made replays draw from differently ordered lists: flaky).
        self._ids = itertools.count()

    # -- driving ---------------------------------------------------------------------------

    def run(self, command: c.AnyCommand) -> list[Event] | None:
        """Decide, check determinism and atomicity, append; None when refused."""
        before = self.state
        try:
            new = decide(self.state, command)
        except DomainError:
            assert self.state is before  # a refusal changes nothing
            return None
        assert decide(before, command) == new, "decide is not deterministic"
        self.events.extend(new)
        self.state = replay(new, self.state)
        for event in new:
            if isinstance(event, MessageQueued):
                self.message_ids.append(event.message_id)
            if isinstance(event, ReviewRequested):
                self.review_ids.append(event.review_id)
        return new

    def meta(self) -> dict[str, object]:
        return {"command_id": f"cmd-{next(self._ids)}", "at": self.now}

    # -- rules -----------------------------------------------------------------------------

    @initialize(company=companies(), sequence=sequence_ids, stop_on_reply=st.booleans())
    def start(self, company, sequence, stop_on_reply):
        """Most sessions start enrolled, so the steps explore the journey, not refusals."""
        self.enroll(company, sequence, stop_on_reply)

    @rule(company=companies(), sequence=sequence_ids, stop_on_reply=st.booleans())
    def enroll(self, company, sequence, stop_on_reply):
        was_enrolled = self.state.enrolled
        out = self.run(
            c.Enroll(
                **self.meta(),
                tenant_id="t1",
                lead_id="lead-1",
                sequence_id=sequence,
                company=company,
                stop_on_reply=stop_on_reply,
            )
        )
        assert (out is None) == was_enrolled, "enrolment happens exactly once"

    @rule(delta=time_steps)
    def time_passes(self, delta):
        self.now += delta

    def draw_message_id(self, data, *, sent=False):
        """Mostly a message in the right status; sometimes any, or one never queued."""
        fitting = [
            m.message_id
            for m in self.state.messages.values()
            if (m.sent_at is not None if sent else m.pending)
        ]
        known = st.sampled_from(self.message_ids)
        return data.draw(st.sampled_from(fitting) | known if fitting else known)

    @rule(
        data=st.data(),
        step=step_numbers,
        channel=outbound_channels,
        phone=phone_ids,
        honest_cost=st.booleans(),
    )
    def queue_step(self, data, step, channel, phone, honest_cost):
        current = self.state.sequence_id
        sequence = data.draw(st.just(current) | sequence_ids if current else sequence_ids)
        phone = data.draw(st.just(self.state.phone_id) | st.just(phone)) or phone
        cost = (
            (whatsapp_cost(self.state) if channel is Channel.WHATSAPP else 0) if honest_cost else 1
        )
        self.run(
            c.QueueMessage(
                **self.meta(),
                message_id=f"m-{next(self._ids)}",
                channel=channel,
                content_hash="h",
                sequence_id=sequence,
                step=step,
                template_id="t",
                template_version=1,
                quota_cost=cost,
                phone_id=phone if channel is Channel.WHATSAPP else None,
            )
        )

    @rule(channel=outbound_channels, phone=phone_ids)
    def next_step_goes_out(self, channel, phone):
        """The common path in one move: queue the next step of the running sequence, send it."""
        taken = [n for (seq, n) in self.state.steps if seq == self.state.sequence_id]
        step = max(taken, default=0) + 1
        queued = self.run(
            c.QueueMessage(
                **self.meta(),
                message_id=f"m-{next(self._ids)}",
                channel=channel,
                content_hash="h",
                sequence_id=self.state.sequence_id,
                step=step,
                quota_cost=whatsapp_cost(self.state) if channel is Channel.WHATSAPP else 0,
                phone_id=(self.state.phone_id or phone) if channel is Channel.WHATSAPP else None,
            )
        )
        if queued:
            message_id = next(e.message_id for e in queued if isinstance(e, MessageQueued))
            sent = self.run(
                c.RecordSent(**self.meta(), message_id=message_id, provider="p", external_id="x")
            )
            assert sent, "a message queued by the rules may be sent at once"

    # The common path is drawn twice as often as any other move, so sessions get somewhere.
    next_step_goes_out_again = rule(channel=outbound_channels, phone=phone_ids)(
        lambda self, channel, phone: self.next_step_goes_out(channel, phone)
    )

    @rule(channel=channels, phone=phone_ids)
    def queue_human_message(self, channel, phone):
        cost = whatsapp_cost(self.state) if channel is Channel.WHATSAPP else 0
        self.run(
            c.QueueMessage(
                **self.meta(),
                message_id=f"m-{next(self._ids)}",
                channel=channel,
                content_hash="h",
                quota_cost=cost,
                phone_id=phone if channel is Channel.WHATSAPP else None,
            )
        )

    @rule(data=st.data())
    def provider_accepts(self, data):
        message_id = self.draw_message_id(data)
        self.run(c.RecordSent(**self.meta(), message_id=message_id, provider="p", external_id="x"))

    @rule(data=st.data(), kind=st.sampled_from(["delivered", "read", "opened", "clicked"]))
    def provider_reports(self, data, kind):
        message_id = self.draw_message_id(data, sent=True)
        cls = {
            "delivered": c.RecordDelivered,
            "read": c.RecordRead,
            "opened": c.RecordOpened,
            "clicked": c.RecordClicked,
        }[kind]
        self.run(cls(**self.meta(), message_id=message_id))

    @rule(data=st.data(), kind=bounce_kinds)
    def provider_bounces(self, data, kind):
        message_id = self.draw_message_id(data, sent=True)
        self.run(c.RecordBounce(**self.meta(), message_id=message_id, kind=kind))

    @rule(data=st.data(), permanent=st.booleans())
    def provider_fails(self, data, permanent):
        message_id = self.draw_message_id(data)
        self.run(
            c.RecordFailure(**self.meta(), message_id=message_id, reason="x", permanent=permanent)
        )

    @rule(data=st.data())
    def cancel(self, data):
        message_id = self.draw_message_id(data)
        self.run(c.CancelMessage(**self.meta(), message_id=message_id, reason="rule closed"))

    @rule(channel=outbound_channels, text=texts, out_of_office=st.booleans(), delta=time_steps)
    def reply_arrives(self, channel, text, out_of_office, delta):
        before = self.state
        out = self.run(
            c.ReceiveReply(
                **self.meta(),
                channel=channel,
                external_id=f"r-{next(self._ids)}",
                text=text,
                content_hash="h",
                out_of_office_until=self.now + delta if out_of_office else None,
            )
        )
        if out is None:
            return
        stops = any(isinstance(e, SequenceStopped) for e in out)
        snoozes = any(isinstance(e, SequenceSnoozed) for e in out)
        if before.sequence_active and before.stop_on_reply and not before.terminal:
            assert stops or out_of_office, "a reply stops a stop-on-reply sequence"
        if out_of_office:
            assert not stops, "an out-of-office reply snoozes instead of stopping"
        else:
            assert not snoozes
        if not out_of_office and before.stage in {
            JourneyState.COLD,
            JourneyState.CONTACTED_WA,
            JourneyState.CONTACTED_EMAIL,
        }:
            assert self.state.stage is JourneyState.WARM_REPLY

    @precondition(lambda self: self.state.replied)  # the analyser reads replies
    @rule(score=scores, label=labels, confidence=confidences, found=triggers)
    def sentiment_scored(self, score, label, confidence, found):
        out = self.run(
            c.ScoreSentiment(
                **self.meta(), score=score, label=label, confidence=confidence, triggers=found
            )
        )
        if out is None:
            assert not (-100 <= score <= 100 and 0 <= confidence <= 1) or not self.state.enrolled
            return
        if found & {ReplyTrigger.COMPLAINT, ReplyTrigger.OPT_OUT}:
            assert any(isinstance(e, ReviewRequested) for e in out), "complaint opens a review"
        if ReplyTrigger.OPT_OUT in found:
            # Ends the journey, unless it ended already: a CONVERTED deal stays converted,
            # and the opt-out is recorded (nothing automated goes out to a terminal journey).
            assert self.state.stage in TERMINAL_STATES, "an opt-out keyword ends the journey"
            assert OptOutScope.ALL in self.state.opted_out

    @rule(reason=reasons, priority=priorities)
    def flag_for_review(self, reason, priority):
        self.run(c.RequestReview(**self.meta(), reason=reason, priority=priority))

    @rule(data=st.data(), resolution=resolutions, user=users)
    def resolve_review(self, data, resolution, user):
        open_ids = sorted(self.state.open_reviews)
        known = st.sampled_from(self.review_ids)
        review_id = data.draw(st.sampled_from(open_ids) | known if open_ids else known)
        self.run(
            c.ResolveReview(
                **self.meta(), review_id=review_id, resolution=resolution, resolved_by=user
            )
        )

    @precondition(lambda self: len(self.events) > 8)  # an early opt-out ends most sessions
    @rule(scope=scopes)
    def opt_out(self, scope):
        self.run(c.OptOut(**self.meta(), scope=scope, source="test"))

    @rule(user=users)
    def pause(self, user):
        self.run(c.Pause(**self.meta(), by=user))

    @rule(user=users)
    def resume(self, user):
        before = self.state
        out = self.run(c.Resume(**self.meta(), by=user))
        if out is not None:
            assert self.state.stage is before.paused_from, "resume returns to the paused-from state"

    @rule(user=users)
    def human_hands_back(self, user):
        """A person clears every block at once: resumes, releases control, closes reviews."""
        if self.state.stage is JourneyState.PAUSED:
            self.run(c.Resume(**self.meta(), by=user))
        if self.state.controlled_by is not None:
            self.run(c.ReleaseControl(**self.meta(), user=user))
        for review_id in sorted(self.state.open_reviews):
            self.run(
                c.ResolveReview(
                    **self.meta(),
                    review_id=review_id,
                    resolution=ReviewResolution.HANDED_BACK,
                    resolved_by=user,
                )
            )
        assert self.state.terminal or (
            self.state.stage is not JourneyState.PAUSED
            and self.state.controlled_by is None
            and not self.state.open_reviews
        ), "a person can always hand a live journey back to automation"

    @rule(user=users)
    def take_control(self, user):
        self.run(c.TakeControl(**self.meta(), user=user))

    @rule(user=users)
    def release_control(self, user):
        self.run(c.ReleaseControl(**self.meta(), user=user))

    @precondition(lambda self: len(self.events) > 6)  # let sessions get going first
    @rule(data=st.data(), user=users)
    def human_transition(self, data, user):
        # Moves the table lists from here are drawn often (the table generates the tests),
        # any state sometimes (so moves it does not list are tried and must be refused).
        listed = sorted(targets_from(self.state.stage))
        to = data.draw(st.sampled_from(listed) | states if listed else states)
        self.run(c.Transition(**self.meta(), to=to, reason="", by=user))

    @rule(sequence=sequence_ids, user=users, stop_on_reply=st.booleans())
    def start_warm_sequence(self, sequence, user, stop_on_reply):
        self.run(
            c.StartSequence(
                **self.meta(), sequence_id=sequence, by=user, stop_on_reply=stop_on_reply
            )
        )

    @precondition(lambda self: len(self.events) > 15)  # ending early would cut sessions short
    @rule()
    def exhaust_sequence(self):
        self.run(c.ExhaustSequence(**self.meta()))

    @precondition(lambda self: self.state.phone_id is not None)
    @rule(phone=phone_ids)
    def reassign_phone(self, phone):
        before = self.state.phone_id
        out = self.run(c.ReassignPhone(**self.meta(), phone_id=phone, reason="phone banned"))
        assert (out is None) == (phone == before)

    def teardown(self):
        """Statistics for `--hypothesis-show-statistics`: how far sessions got."""
        note(f"session of {len(self.events) // 10 * 10}+ events")
        for stage in {e.to_state for e in self.events if hasattr(e, "to_state")}:
            note(f"visited {stage}")
        for e in self.events:
            if getattr(e, "to_state", None) is JourneyState.DEAD:
                note(f"died of {e.reason[:30]}")

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def log_obeys_the_rules(self):
        """Every event in the log is allowed by domain.md, read independently of the code."""
        check_log(self.events)

    @invariant()
    def replay_equals_state(self):
        """Folding the stream from scratch gives the live state, however often it is replayed."""
        assert replay(self.events) == self.state
        assert replay(self.events) == replay(self.events)

    @invariant()
    def versions_are_contiguous(self):
        """The stream version counts the events: no gap, no repeat."""
        assert self.state.version == len(self.events)

    @invariant()
    def terminal_states_absorb(self):
        """Once CONVERTED or DEAD, always so."""
        if self.terminal_seen:
            assert self.state.stage in TERMINAL_STATES
        self.terminal_seen = self.state.stage in TERMINAL_STATES


TestJourneySpecification = JourneyMachine.TestCase
