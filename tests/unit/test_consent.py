from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from cerniq_outreach.domain.consent import (
    DEFAULT_CONSENT_POLICY,
    ConsentPolicy,
    ConsentRecord,
    check_consent,
)
from cerniq_outreach.domain.enums import Channel, LawfulBasis, OptOutScope
from cerniq_outreach.domain.errors import ConfigurationError, InvalidCommand

T0 = datetime(2025, 1, 10, 9, 0, tzinfo=UTC)

CONSENT = LawfulBasis.CONSENT
CUSTOMER = LawfulBasis.EXISTING_CUSTOMER
INTEREST = LawfulBasis.LEGITIMATE_INTEREST


def record(
    family: OptOutScope, basis: LawfulBasis, at: datetime = T0, source: str = "web form"
) -> ConsentRecord:
    return ConsentRecord(
        channel_family=family, basis=basis, evidence="form #41", source=source, collected_at=at
    )


@pytest.mark.parametrize(
    ("channel", "basis", "allowed"),
    [
        (Channel.EMAIL_COLD, CONSENT, True),
        (Channel.EMAIL_COLD, CUSTOMER, True),
        (Channel.EMAIL_COLD, INTEREST, False),
        (Channel.EMAIL_WARM, CONSENT, True),
        (Channel.EMAIL_WARM, CUSTOMER, True),
        (Channel.EMAIL_WARM, INTEREST, False),
        (Channel.WHATSAPP, CONSENT, True),
        (Channel.WHATSAPP, CUSTOMER, True),
        (Channel.WHATSAPP, INTEREST, True),
    ],
)
def test_the_default_policy_table(channel: Channel, basis: LawfulBasis, allowed: bool) -> None:
    """Email needs consent or an existing customer; WhatsApp also takes legitimate interest."""
    family = OptOutScope.WHATSAPP if channel is Channel.WHATSAPP else OptOutScope.EMAIL
    refusal = check_consent(DEFAULT_CONSENT_POLICY, [record(family, basis)], channel)
    if allowed:
        assert refusal is None
    else:
        assert refusal is not None
        assert refusal.code == "BASIS_NOT_ALLOWED"


def test_a_policy_built_without_arguments_is_the_default() -> None:
    """ConsentPolicy() carries the documented default table."""
    assert ConsentPolicy() == DEFAULT_CONSENT_POLICY
    assert DEFAULT_CONSENT_POLICY.bases_for(OptOutScope.EMAIL) == {CONSENT, CUSTOMER}
    assert DEFAULT_CONSENT_POLICY.bases_for(OptOutScope.WHATSAPP) == {CONSENT, CUSTOMER, INTEREST}


@pytest.mark.parametrize("channel", [Channel.PHONE, Channel.MANUAL])
def test_human_channels_need_no_marketing_basis(channel: Channel) -> None:
    """A person calling or writing by hand needs no recorded basis."""
    assert check_consent(DEFAULT_CONSENT_POLICY, [], channel) is None
    assert check_consent(ConsentPolicy(allowed={}), [], channel) is None


@pytest.mark.parametrize("channel", [Channel.WHATSAPP, Channel.EMAIL_COLD, Channel.EMAIL_WARM])
def test_no_record_means_no_lawful_basis(channel: Channel) -> None:
    """Without a record for the channel's family the send is refused as NO_LAWFUL_BASIS."""
    refusal = check_consent(DEFAULT_CONSENT_POLICY, [], channel)
    assert refusal is not None
    assert refusal.code == "NO_LAWFUL_BASIS"
    assert str(channel) in refusal.message
    assert "CONSENT" in refusal.message


def test_a_basis_for_one_family_does_not_open_the_other() -> None:
    """WhatsApp consent does not permit email, and email consent does not permit WhatsApp."""
    whatsapp_only = [record(OptOutScope.WHATSAPP, CONSENT)]
    email_only = [record(OptOutScope.EMAIL, CONSENT)]
    refusal = check_consent(DEFAULT_CONSENT_POLICY, whatsapp_only, Channel.EMAIL_COLD)
    assert refusal is not None
    assert refusal.code == "NO_LAWFUL_BASIS"
    refusal = check_consent(DEFAULT_CONSENT_POLICY, email_only, Channel.WHATSAPP)
    assert refusal is not None
    assert refusal.code == "NO_LAWFUL_BASIS"


def test_the_latest_record_wins_whatever_the_order_given() -> None:
    """A newer basis replaces an older one for its family, in whichever order they arrive."""
    older_consent = record(OptOutScope.EMAIL, CONSENT, T0)
    newer_interest = record(OptOutScope.EMAIL, INTEREST, T0 + timedelta(days=30))
    for records in ([older_consent, newer_interest], [newer_interest, older_consent]):
        refusal = check_consent(DEFAULT_CONSENT_POLICY, records, Channel.EMAIL_COLD)
        assert refusal is not None
        assert refusal.code == "BASIS_NOT_ALLOWED"

    older_interest = record(OptOutScope.EMAIL, INTEREST, T0)
    newer_customer = record(OptOutScope.EMAIL, CUSTOMER, T0 + timedelta(days=30))
    for records in ([older_interest, newer_customer], [newer_customer, older_interest]):
        assert check_consent(DEFAULT_CONSENT_POLICY, records, Channel.EMAIL_WARM) is None


def test_on_equal_times_the_record_given_last_wins() -> None:
    """Two records collected at the same instant: the later in the sequence is the newer fact."""
    consent = record(OptOutScope.EMAIL, CONSENT)
    interest = record(OptOutScope.EMAIL, INTEREST)
    assert check_consent(DEFAULT_CONSENT_POLICY, [interest, consent], Channel.EMAIL_COLD) is None
    refusal = check_consent(DEFAULT_CONSENT_POLICY, [consent, interest], Channel.EMAIL_COLD)
    assert refusal is not None
    assert refusal.code == "BASIS_NOT_ALLOWED"


def test_a_newer_record_of_the_other_family_does_not_hide_the_latest_of_this_one() -> None:
    """Only records of the channel's own family are compared."""
    records = [
        record(OptOutScope.EMAIL, CONSENT, T0),
        record(OptOutScope.WHATSAPP, INTEREST, T0 + timedelta(days=1)),
    ]
    assert check_consent(DEFAULT_CONSENT_POLICY, records, Channel.EMAIL_COLD) is None


def test_a_refused_basis_is_named_with_its_source_and_the_accepted_ones() -> None:
    """BASIS_NOT_ALLOWED says which basis the lead has, where it came from and what would do."""
    refusal = check_consent(
        DEFAULT_CONSENT_POLICY,
        [record(OptOutScope.EMAIL, INTEREST, source="trade fair list")],
        Channel.EMAIL_COLD,
    )
    assert refusal is not None
    assert refusal.code == "BASIS_NOT_ALLOWED"
    assert "LEGITIMATE_INTEREST" in refusal.message
    assert "trade fair list" in refusal.message
    assert "EMAIL_COLD" in refusal.message
    assert "CONSENT, EXISTING_CUSTOMER" in refusal.message


def test_a_stricter_tenant_refuses_whatsapp_on_legitimate_interest() -> None:
    """A tenant that removes LEGITIMATE_INTEREST from WhatsApp refuses it and keeps the rest."""
    strict = ConsentPolicy(
        allowed={
            OptOutScope.EMAIL: frozenset({CONSENT, CUSTOMER}),
            OptOutScope.WHATSAPP: frozenset({CONSENT, CUSTOMER}),
        }
    )
    refusal = check_consent(strict, [record(OptOutScope.WHATSAPP, INTEREST)], Channel.WHATSAPP)
    assert refusal is not None
    assert refusal.code == "BASIS_NOT_ALLOWED"
    assert check_consent(strict, [record(OptOutScope.WHATSAPP, CUSTOMER)], Channel.WHATSAPP) is None


@pytest.mark.parametrize(
    "allowed",
    [
        {OptOutScope.EMAIL: frozenset({CONSENT})},
        {OptOutScope.EMAIL: frozenset({CONSENT}), OptOutScope.WHATSAPP: frozenset()},
    ],
)
def test_a_family_the_policy_gives_no_basis_is_not_consentable(
    allowed: dict[OptOutScope, frozenset[LawfulBasis]],
) -> None:
    """A family missing from the policy, or mapped to no basis, refuses every send on it."""
    policy = ConsentPolicy(allowed=allowed)
    for records in ([], [record(OptOutScope.WHATSAPP, CONSENT)]):
        refusal = check_consent(policy, records, Channel.WHATSAPP)
        assert refusal is not None
        assert refusal.code == "CHANNEL_NOT_CONSENTABLE"
        assert "WHATSAPP" in refusal.message


def test_a_policy_maps_only_whatsapp_and_email() -> None:
    """ALL is an opt-out scope, not a channel family a basis can open."""
    with pytest.raises(ConfigurationError, match="ALL"):
        ConsentPolicy(allowed={OptOutScope.ALL: frozenset({CONSENT})})


def test_a_record_is_kept_per_family_never_for_all() -> None:
    """A consent record names WHATSAPP or EMAIL; ALL is refused."""
    with pytest.raises(InvalidCommand, match="ALL"):
        record(OptOutScope.ALL, CONSENT)


def test_a_record_needs_a_time_zone() -> None:
    """A naive collected_at is refused: it could not be compared with the others."""
    with pytest.raises(InvalidCommand, match="time zone"):
        record(OptOutScope.EMAIL, CONSENT, datetime(2025, 1, 10, 9, 0))  # noqa: DTZ001


def test_a_policy_and_a_record_survive_a_json_round_trip() -> None:
    """Policies and records are stored as JSON and come back equal."""
    policy = ConsentPolicy()
    kept = record(OptOutScope.EMAIL, CUSTOMER)
    assert msgspec.json.decode(msgspec.json.encode(policy), type=ConsentPolicy) == policy
    assert msgspec.json.decode(msgspec.json.encode(kept), type=ConsentRecord) == kept
