"""Shared hypothesis strategies for the domain's values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

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
from cerniq_outreach.domain.events import Company

EPOCH = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # a Monday, 10:00 in Bucharest

texts = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=0, max_size=40
)
names = st.sampled_from(["Agro Verde SRL", "Ferma Bănățeană", "Cereale Nord SA", "Ion Popescu PFA"])
phones = st.sampled_from(["+40722123456", "+40744000111", "+40264123456"])
emails = st.sampled_from(["ion@agroverde.ro", "office@ferma.ro", "contact@cereale-nord.ro"])


@st.composite
def companies(draw: st.DrawFn) -> Company:
    """A company with a phone, an email or both (a lead needs at least one)."""
    phone = draw(st.none() | phones)
    email = draw(st.none() | emails) if phone else draw(emails)
    return Company(
        name=draw(names),
        fiscal_code=draw(st.none() | st.from_regex(r"RO[0-9]{6,9}", fullmatch=True)),
        county=draw(st.none() | st.sampled_from(["Timiș", "Cluj", "Iasi", "Dolj"])),
        phone=phone,
        email=email,
        contact_name=draw(st.none() | st.sampled_from(["Ion", "Maria Ionescu", "Ștefan"])),
    )


aware_datetimes = st.datetimes(
    min_value=datetime(2020, 1, 1),  # noqa: DTZ001 - hypothesis bounds are naive by design
    max_value=datetime(2035, 12, 31),  # noqa: DTZ001
    timezones=st.just(UTC),
)
time_steps = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3))
channels = st.sampled_from(Channel)
outbound_channels = st.sampled_from([Channel.WHATSAPP, Channel.EMAIL_COLD, Channel.EMAIL_WARM])
states = st.sampled_from(JourneyState)
scopes = st.sampled_from(OptOutScope)
bounce_kinds = st.sampled_from(BounceKind)
labels = st.sampled_from(SentimentLabel)
# Most replies trigger nothing; a trigger set that often held OPT_OUT would end every session.
triggers = st.just(frozenset()) | st.frozensets(st.sampled_from(ReplyTrigger), max_size=2)
reasons = st.sampled_from(ReviewReason)
priorities = st.sampled_from(Priority)
resolutions = st.sampled_from(ReviewResolution)
users = st.sampled_from(["ana", "mihai"])
sequence_ids = st.sampled_from(["cold-default", "warm-1", "warm-2"])
step_numbers = st.integers(min_value=1, max_value=4)
phone_ids = st.sampled_from(["phone-1", "phone-2", "phone-3"])
scores = st.integers(min_value=-100, max_value=100) | st.sampled_from([-101, 101, 500])
confidences = st.floats(min_value=0, max_value=1) | st.sampled_from([-0.1, 1.5])
