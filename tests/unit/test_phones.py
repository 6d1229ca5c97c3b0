"""The phone pool's domain: registering numbers, changing them, and health checks that pause."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

import pytest

from cerniq_outreach.domain.contacts import InvalidContact
from cerniq_outreach.domain.enums import PhoneStatus
from cerniq_outreach.domain.errors import InvalidCommand, PhoneAlreadyInPool, UnknownPhone
from cerniq_outreach.domain.events import (
    PhoneHealthChecked,
    PhoneRegistered,
    PhoneSettingsChanged,
    PhoneStatusChanged,
    stream_of,
)
from cerniq_outreach.domain.phones import (
    ChangePhoneSettings,
    ChangePhoneStatus,
    Phone,
    RecordHealthCheck,
    RegisterPhone,
    decide_phone,
    phone_id_for,
    quota_settings,
    replay,
    stricter,
)
from cerniq_outreach.domain.quota_ledger import PhoneQuotaSettings

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
_ids = itertools.count()


def run(phone: Phone, command) -> tuple[Phone, list]:
    events = decide_phone(phone, command)
    return replay(events, phone), events


def register(tenant: str = "t1", number: str = "0722 123 456", **fields) -> Phone:
    phone, _ = run(
        Phone(),
        RegisterPhone(
            command_id=f"reg-{next(_ids)}", at=T0, tenant_id=tenant, number=number, **fields
        ),
    )
    return phone


def status(to: PhoneStatus, reason: str = "operator", **fields) -> ChangePhoneStatus:
    return ChangePhoneStatus(
        command_id=f"st-{next(_ids)}", at=T0, status=to, reason=reason, **fields
    )


def check(**fields) -> RecordHealthCheck:
    return RecordHealthCheck(
        command_id=f"hc-{next(_ids)}", at=T0 + timedelta(hours=1), **{"connected": True, **fields}
    )


def test_a_number_is_registered_in_e164_under_an_id_of_its_tenant_and_number():
    """Any common form becomes E.164; the id is the same for every form, different per tenant."""
    phone = register(label="  Vânzări 1 ", account_id="acc-7", daily_limit=150)
    assert phone.number == "+40722123456"
    assert phone.phone_id == phone_id_for("t1", "+40722123456")
    assert register(number="+40 722 123 456").phone_id == phone.phone_id
    assert register(tenant="t2").phone_id != phone.phone_id
    assert (phone.label, phone.account_id, phone.daily_limit) == ("Vânzări 1", "acc-7", 150)
    assert (phone.status, phone.registered_at, phone.version) == (PhoneStatus.ACTIVE, T0, 1)


def test_phone_events_belong_to_the_phone_stream():
    """A phone's events go to `phone:<id>`, never to a lead's stream."""
    events = decide_phone(
        Phone(), RegisterPhone(command_id="c", at=T0, tenant_id="t1", number="0722123456")
    )
    assert [type(e) for e in events] == [PhoneRegistered]
    assert [stream_of(e) for e in events] == [f"phone:{phone_id_for('t1', '+40722123456')}"]


def test_a_number_already_in_the_pool_is_refused():
    """Registering onto a registered phone's state is refused, naming the number."""
    phone = register()
    with pytest.raises(PhoneAlreadyInPool, match=r"\+40722123456"):
        decide_phone(
            phone, RegisterPhone(command_id="again", at=T0, tenant_id="t1", number="0722123456")
        )


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"number": "not a phone"}, InvalidContact),
        ({"number": "123"}, InvalidContact),
        ({"daily_limit": 201}, InvalidCommand),
        ({"daily_limit": -1}, InvalidCommand),
        ({"tenant_id": ""}, InvalidCommand),
    ],
)
def test_a_registration_with_impossible_values_is_refused(fields, error):
    """A number that cannot be read, a limit outside 0..200 or no tenant: a domain error."""
    command = RegisterPhone(
        command_id="c", at=T0, **{"tenant_id": "t1", "number": "0722123456", **fields}
    )
    with pytest.raises(error):
        decide_phone(Phone(), command)


@pytest.mark.parametrize(
    "command",
    [
        ChangePhoneStatus(command_id="c", at=T0, status=PhoneStatus.PAUSED, reason="r"),
        ChangePhoneSettings(command_id="c", at=T0, label="x"),
        RecordHealthCheck(command_id="c", at=T0, connected=True),
    ],
    ids=lambda c: type(c).__name__,
)
def test_a_phone_that_is_not_in_the_pool_cannot_be_changed(command):
    """Every command but registration needs a registered phone."""
    with pytest.raises(UnknownPhone):
        decide_phone(Phone(), command)


def test_a_status_change_records_where_from_and_why():
    """The event names the previous status, the new one, the reason and who."""
    phone, events = run(register(), status(PhoneStatus.BANNED, "WhatsApp banned it", by="ana"))
    [event] = events
    assert isinstance(event, PhoneStatusChanged)
    assert (event.previous, event.status, event.reason, event.by) == (
        PhoneStatus.ACTIVE,
        PhoneStatus.BANNED,
        "WhatsApp banned it",
        "ana",
    )
    assert (phone.status, phone.status_reason, phone.version) == (
        PhoneStatus.BANNED,
        "WhatsApp banned it",
        2,
    )


def test_setting_the_status_a_phone_has_records_nothing():
    """The same status again is not a change: no event (a retried command is harmless)."""
    assert decide_phone(register(), status(PhoneStatus.ACTIVE)) == []


def test_a_status_change_without_a_reason_is_refused():
    """Every status change says why."""
    with pytest.raises(InvalidCommand, match="why"):
        decide_phone(register(), status(PhoneStatus.PAUSED, "   "))


def test_a_retried_command_produces_the_same_events():
    """Event ids derive from the command id, so the store sees a retry as a no-op."""
    command = status(PhoneStatus.PAUSED)
    phone = register()
    assert decide_phone(phone, command) == decide_phone(phone, command)


def test_settings_change_only_what_is_given_and_record_all_four():
    """UNSET fields keep their value; the event carries the full new settings."""
    phone = register(label="A", account_id="acc-1", warmup_started=date(2026, 3, 2))
    command = ChangePhoneSettings(command_id="s", at=T0, daily_limit=120, label=None)
    phone, [event] = run(phone, command)
    assert isinstance(event, PhoneSettingsChanged)
    assert (event.label, event.account_id, event.daily_limit, event.warmup_started) == (
        None,
        "acc-1",
        120,
        date(2026, 3, 2),
    )
    assert (phone.label, phone.daily_limit) == (None, 120)
    assert decide_phone(phone, ChangePhoneSettings(command_id="t", at=T0, daily_limit=120)) == []
    with pytest.raises(InvalidCommand):
        decide_phone(phone, ChangePhoneSettings(command_id="u", at=T0, daily_limit=500))


def test_a_good_health_check_is_recorded_and_changes_no_status():
    """Connected, no warning, reputation at the floor: recorded, the phone stays ACTIVE."""
    phone, events = run(register(), check(reputation=40, detail="CONNECTED"))
    assert [type(e) for e in events] == [PhoneHealthChecked]
    assert (phone.status, phone.reputation, phone.connected) == (PhoneStatus.ACTIVE, 40, True)
    assert phone.last_health_check_at == T0 + timedelta(hours=1)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"connected": False}, "health check: disconnected"),
        ({"ban_warning": True}, "health check: ban warning"),
        ({"reputation": 39}, "health check: reputation 39 below 40"),
        (
            {"connected": False, "ban_warning": True, "reputation": 10},
            "health check: disconnected, ban warning, reputation 10 below 40",
        ),
    ],
)
def test_a_bad_health_check_pauses_an_active_phone(fields, reason):
    """Disconnect, ban warning or a reputation below 40 pause an ACTIVE phone, saying why."""
    phone, events = run(register(), check(**fields))
    assert [type(e) for e in events] == [PhoneHealthChecked, PhoneStatusChanged]
    paused = events[1]
    assert (paused.previous, paused.status, paused.reason, paused.by) == (
        PhoneStatus.ACTIVE,
        PhoneStatus.PAUSED,
        reason,
        None,
    )
    assert phone.status is PhoneStatus.PAUSED
    assert len({e.event_id for e in events}) == 2


@pytest.mark.parametrize("current", [s for s in PhoneStatus if s is not PhoneStatus.ACTIVE])
def test_a_bad_health_check_leaves_a_phone_that_is_not_active_as_it_is(current):
    """Only ACTIVE phones are paused automatically; the check is still recorded."""
    phone, _ = run(register(), status(current))
    after, events = run(phone, check(connected=False, ban_warning=True))
    assert [type(e) for e in events] == [PhoneHealthChecked]
    assert after.status is current


def test_a_check_without_a_score_keeps_the_last_one():
    """A reputation the provider did not give is not a reputation of zero."""
    phone, _ = run(register(), check(reputation=80))
    phone, _ = run(phone, check())
    assert phone.reputation == 80


def test_a_reputation_outside_0_to_100_is_refused():
    """The provider's score is 0..100; anything else is a bad command, not a pause."""
    with pytest.raises(InvalidCommand, match="reputation"):
        decide_phone(register(), check(reputation=101))


def test_quota_settings_are_what_the_guardian_needs():
    """Status, limit and warm-up start, under the phone's id."""
    phone = register(daily_limit=90, warmup_started=date(2026, 3, 1))
    assert quota_settings(phone) == PhoneQuotaSettings(
        phone_id=phone.phone_id,
        status=PhoneStatus.ACTIVE,
        daily_limit=90,
        warmup_started=date(2026, 3, 1),
    )


def test_the_stricter_settings_take_the_tighter_side_of_each():
    """Not ACTIVE if either is not, the lower limit, the later warm-up start."""
    active = PhoneQuotaSettings(phone_id="p", status=PhoneStatus.ACTIVE, daily_limit=200)
    banned = PhoneQuotaSettings(
        phone_id="p", status=PhoneStatus.BANNED, daily_limit=50, warmup_started=date(2026, 3, 9)
    )
    both = stricter(active, banned)
    assert both == stricter(banned, active) == banned
    warming = PhoneQuotaSettings(
        phone_id="p", status=PhoneStatus.ACTIVE, daily_limit=120, warmup_started=date(2026, 3, 1)
    )
    assert stricter(warming, banned).warmup_started == date(2026, 3, 9)
    assert stricter(active, warming) == warming
