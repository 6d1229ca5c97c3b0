from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from cerniq_outreach.domain.contacts import (
    InvalidContact,
    email_domain,
    normalize_domain,
    normalize_email,
    normalize_phone,
)
from cerniq_outreach.domain.enums import Channel
from cerniq_outreach.domain.suppression import (
    SuppressionEntry,
    SuppressionList,
    check_suppression,
    domain_entry,
    email_entry,
    phone_entry,
    suppresses,
)

AT = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)

# A Romanian mobile's national significant number: 7 and eight more digits.
romanian_mobiles = st.from_regex(r"7[0-9]{8}", fullmatch=True)


def _groups(nsn: str, sep: str) -> str:
    """'722123456' as '722<sep>123<sep>456'."""
    return sep.join((nsn[:3], nsn[3:6], nsn[6:]))


# Every common way a Romanian mobile is written, as a function of its 9 digits and a separator.
ROMANIAN_FORMS: list[Callable[[str, str], str]] = [
    lambda n, s: "0" + _groups(n, s),  # 0722 123 456
    lambda n, s: f"(0{n[:3]}) {n[3:6]}{s}{n[6:]}",  # (0722) 123.456
    lambda n, s: "+40" + s + _groups(n, s),  # +40 722 123 456
    lambda n, _: "+40" + n,  # +40722123456
    lambda n, _: "0040" + n,  # 0040722123456
    lambda n, s: "0040" + s + _groups(n, s),  # 0040 722 123 456
    lambda n, _: "40" + n,  # 40722123456
    lambda n, s: "+40 (0) " + _groups(n, s),  # +40 (0) 722 123 456
    lambda n, s: "+40(0)" + _groups(n, s),  # +40(0)722-123-456
    lambda n, s: "+40 0" + _groups(n, s),  # +40 0722 123 456
    lambda n, _: n,  # 722123456 (a spreadsheet dropped the 0)
    lambda n, s: f"  0{_groups(n, s)}\t",  # surrounding whitespace
]

separators = st.sampled_from([" ", "-", ".", "", "/"])


@st.composite
def romanian_mobile_forms(draw: st.DrawFn) -> tuple[str, str]:
    """A Romanian mobile's 9 digits and one written form of it."""
    nsn = draw(romanian_mobiles)
    form = draw(st.sampled_from(ROMANIAN_FORMS))
    return nsn, form(nsn, draw(separators))


foreign_numbers = st.builds(
    lambda cc, rest: f"+{cc} {rest}",
    st.sampled_from(["49", "33", "1", "359", "36", "373"]),
    st.from_regex(r"[1-9][0-9]{6,9}", fullmatch=True),
)

labels = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
domains = st.builds(
    lambda parts, tld: ".".join([*parts, tld]),
    st.lists(labels, min_size=1, max_size=3),
    st.sampled_from(["ro", "com", "eu", "de"]),
)
local_parts = st.from_regex(r"[a-z0-9]([a-z0-9._+-]{0,15}[a-z0-9])?", fullmatch=True)
emails = st.builds(lambda local, domain: f"{local}@{domain}", local_parts, domains)


def _flip_case(text: str, pattern: list[bool]) -> str:
    """`text` with the case of each letter swapped where `pattern` says so."""
    return "".join(
        c.swapcase() if flip else c
        for c, flip in zip(text, pattern + [False] * len(text), strict=False)
    )


# ---- phones -------------------------------------------------------------------------------


@given(romanian_mobile_forms())
def test_any_written_form_of_a_romanian_mobile_normalises_to_one_e164(
    case: tuple[str, str],
) -> None:
    """Every common way of writing a Romanian mobile gives the same +40 E.164 number."""
    nsn, written = case
    assert normalize_phone(written) == f"+40{nsn}"


@given(st.one_of(romanian_mobile_forms().map(lambda case: case[1]), foreign_numbers))
def test_normalising_a_phone_twice_changes_nothing(written: str) -> None:
    """normalize_phone is idempotent: an E.164 number normalises to itself."""
    once = normalize_phone(written)
    assert normalize_phone(once) == once


@given(st.text(alphabet=st.sampled_from("0123456789+ -.()/x"), max_size=22))
def test_any_text_either_normalises_to_e164_or_is_refused_as_invalid_contact(text: str) -> None:
    """normalize_phone returns '+' and 7-15 digits, idempotently, or raises InvalidContact."""
    try:
        normal = normalize_phone(text)
    except InvalidContact:
        return
    assert normal.startswith("+")
    assert normal[1:].isdigit()
    assert 7 <= len(normal) - 1 <= 15
    assert normalize_phone(normal) == normal


@pytest.mark.parametrize(
    ("written", "e164"),
    [
        ("0722 123 456", "+40722123456"),
        ("0722-123-456", "+40722123456"),
        ("(0722) 123.456", "+40722123456"),
        ("+40 722 123 456", "+40722123456"),
        ("0040722123456", "+40722123456"),
        ("40722123456", "+40722123456"),
        ("+40 (0) 722 123 456", "+40722123456"),
        ("021 312 3456", "+40213123456"),
        ("0264 123 456", "+40264123456"),
        ("+49 30 1234567", "+49301234567"),
        ("0049301234567", "+49301234567"),
        ("+49 (0)30 1234567", "+49301234567"),
    ],
)
def test_the_documented_phone_forms_normalise_to_e164(written: str, e164: str) -> None:
    """Romanian mobiles and landlines and foreign numbers, as written in the wild, become E.164."""
    assert normalize_phone(written) == e164


def test_a_national_number_takes_the_default_country_code() -> None:
    """A number with a trunk 0 belongs to the default country, Romania unless told otherwise."""
    assert normalize_phone("030 1234567", default_country_code="49") == "+49301234567"


@pytest.mark.parametrize(
    ("written", "complaint"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("0722 ABC 456", "letters"),
        ("+40 722 123 456 ext 12", "letters"),
        ("0722 123 45", "9 digits"),
        ("0722 123 4567", "9 digits"),
        ("+40 722 123", "9 digits"),
        ("+49 1234 5678 9012 3456", "at most 15"),
        ("+49 1234", "too few"),
        ("49301234567", "country code"),
        ("0722+123456", "not at the start"),
        ("0722_123_456", "'_'"),
        ("+0722123456", "country code"),
        ("()", "no digits"),
    ],
)
def test_unreadable_phones_are_refused_with_a_reason(written: str, complaint: str) -> None:
    """Empty numbers, letters, stray characters and wrong digit counts raise InvalidContact."""
    with pytest.raises(InvalidContact, match=complaint) as refused:
        normalize_phone(written)
    assert refused.value.code == "INVALID_CONTACT"


# ---- emails and domains -------------------------------------------------------------------


@given(emails, st.lists(st.booleans()))
def test_an_email_normalises_to_its_lowercase_form_whatever_the_case(
    email: str, pattern: list[bool]
) -> None:
    """normalize_email lowercases the whole address and is idempotent."""
    written = _flip_case(email, pattern)
    assert normalize_email(f" {written} ") == email
    assert normalize_email(email) == email


def test_email_domain_is_the_lowercased_part_after_the_at() -> None:
    """email_domain gives the lowercased domain of an address."""
    assert email_domain(" Ion.Pop@Mail.Agro.RO ") == "mail.agro.ro"


def test_a_domain_loses_its_leading_at_and_its_case() -> None:
    """normalize_domain accepts '@Agro.ro' and gives 'agro.ro'."""
    assert normalize_domain(" @Agro.RO ") == "agro.ro"


@pytest.mark.parametrize(
    ("written", "complaint"),
    [
        ("", "empty"),
        ("ion.agro.ro", "no '@'"),
        ("@agro.ro", "nothing before"),
        ("ion@", "empty domain"),
        ("ion pop@agro.ro", "spaces"),
        ("ion@agro", "no dot"),
        ("ion@agro..ro", "empty label"),
        ("ion@.agro.ro", "empty label"),
        ("ion@@agro.ro", "more than one"),
        ("Ion <ion@agro.ro>", "spaces"),
        ("ion@agro.ro;ana@agro.ro", "';'"),
    ],
)
def test_malformed_emails_are_refused_with_a_reason(written: str, complaint: str) -> None:
    """Missing @, empty parts, spaces, dotless or broken domains raise InvalidContact."""
    with pytest.raises(InvalidContact, match=complaint):
        normalize_email(written)


@pytest.mark.parametrize("written", ["", "ro", "agro..ro", "a b.ro", "x@agro.ro"])
def test_malformed_domains_are_refused(written: str) -> None:
    """A suppressed domain needs at least one dot, no empty label, no space and no inner @."""
    with pytest.raises(InvalidContact):
        normalize_domain(written)


# ---- suppression --------------------------------------------------------------------------


@given(romanian_mobile_forms(), st.sampled_from(ROMANIAN_FORMS), separators)
def test_a_suppressed_phone_is_caught_in_any_written_form(
    case: tuple[str, str], other_form: Callable[[str, str], str], sep: str
) -> None:
    """A phone suppressed in one form is caught when checked in any other form."""
    nsn, written = case
    suppression = SuppressionList.from_entries(
        [phone_entry(written, reason="OPT_OUT", added_at=AT)]
    )
    found = check_suppression(suppression, phone=other_form(nsn, sep), email=None)
    assert found is not None
    assert found.value == f"+40{nsn}"
    assert found.reason == "OPT_OUT"


@given(romanian_mobiles, romanian_mobiles)
def test_a_different_phone_is_not_caught(suppressed: str, other: str) -> None:
    """Only the suppressed number is caught, not another one."""
    assume(suppressed != other)
    suppression = SuppressionList.from_entries(
        [phone_entry("0" + suppressed, reason="OPT_OUT", added_at=AT)]
    )
    assert check_suppression(suppression, phone="0" + other, email=None) is None


@given(emails, st.lists(st.booleans()), st.lists(st.booleans()))
def test_a_suppressed_email_is_caught_whatever_its_case(
    email: str, stored_case: list[bool], checked_case: list[bool]
) -> None:
    """An address suppressed in one case is caught when checked in another."""
    suppression = SuppressionList.from_entries(
        [email_entry(_flip_case(email, stored_case), reason="UNSUBSCRIBE", added_at=AT)]
    )
    found = check_suppression(suppression, phone=None, email=_flip_case(email, checked_case))
    assert found is not None
    assert found.value == email


@given(domains, local_parts, st.lists(labels, max_size=3), st.lists(st.booleans()))
def test_a_domain_entry_catches_every_address_in_the_domain_and_its_subdomains(
    domain: str, local: str, subdomain: list[str], case: list[bool]
) -> None:
    """A domain entry catches any address at that domain or below it, in any case."""
    suppression = SuppressionList.from_entries(
        [domain_entry("@" + domain, reason="COMPLAINT", added_at=AT)]
    )
    address = _flip_case(f"{local}@{'.'.join([*subdomain, domain])}", case)
    found = check_suppression(suppression, phone=None, email=address)
    assert found is not None
    assert found.kind == "domain"
    assert found.value == domain


@given(domains, local_parts, labels, st.sampled_from(["", "-"]))
def test_a_domain_entry_ignores_domains_that_only_end_with_the_same_letters(
    domain: str, local: str, prefix: str, joiner: str
) -> None:
    """'agro.ro' does not catch 'xagro.ro': domains match by whole labels only."""
    lookalike = prefix + joiner + domain
    suppression = SuppressionList.from_entries([domain_entry(domain, reason="MANUAL", added_at=AT)])
    assert check_suppression(suppression, phone=None, email=f"{local}@{lookalike}") is None


@given(domains, local_parts, labels)
def test_a_domain_entry_ignores_domains_that_only_start_with_it(
    domain: str, local: str, extra: str
) -> None:
    """'agro.ro' does not catch 'agro.ro.com': the entry must be the end of the domain."""
    longer = f"{domain}.{extra}"
    # "ro.ro" followed by ".ro" is "ro.ro.ro", which really is a subdomain of "ro.ro".
    assume(not longer.endswith("." + domain))
    suppression = SuppressionList.from_entries([domain_entry(domain, reason="MANUAL", added_at=AT)])
    assert check_suppression(suppression, phone=None, email=f"{local}@{longer}") is None


def test_agro_ro_suppresses_mail_agro_ro_but_not_xagro_ro() -> None:
    """The documented example: 'agro.ro' catches subdomains, not lookalikes."""
    suppression = SuppressionList.from_entries(
        [domain_entry("agro.ro", reason="MANUAL", added_at=AT)]
    )
    assert check_suppression(suppression, phone=None, email="x@mail.agro.ro") is not None
    assert check_suppression(suppression, phone=None, email="x@agro.ro") is not None
    assert check_suppression(suppression, phone=None, email="x@xagro.ro") is None


@given(romanian_mobiles, emails)
def test_each_channel_checks_only_the_contact_it_uses(nsn: str, email: str) -> None:
    """WhatsApp and phone check the phone, email channels the address, manual both."""
    phone_only = SuppressionList.from_entries(
        [phone_entry("0" + nsn, reason="OPT_OUT", added_at=AT)]
    )
    email_only = SuppressionList.from_entries(
        [email_entry(email, reason="HARD_BOUNCE", added_at=AT)]
    )
    phone = "+40 " + nsn
    assert suppresses(phone_only, Channel.WHATSAPP, phone, email) is not None
    assert suppresses(phone_only, Channel.PHONE, phone, email) is not None
    assert suppresses(phone_only, Channel.EMAIL_COLD, phone, email) is None
    assert suppresses(phone_only, Channel.EMAIL_WARM, phone, email) is None
    assert suppresses(email_only, Channel.WHATSAPP, phone, email) is None
    assert suppresses(email_only, Channel.PHONE, phone, email) is None
    assert suppresses(email_only, Channel.EMAIL_COLD, phone, email) is not None
    assert suppresses(email_only, Channel.EMAIL_WARM, phone, email) is not None
    assert suppresses(phone_only, Channel.MANUAL, phone, email) is not None
    assert suppresses(email_only, Channel.MANUAL, phone, email) is not None


def test_a_missing_contact_is_never_suppressed() -> None:
    """With no phone and no email given there is nothing to match."""
    suppression = SuppressionList.from_entries(
        [phone_entry("0722123456", reason="OPT_OUT", added_at=AT)]
    )
    assert check_suppression(suppression, phone=None, email=None) is None
    assert suppresses(suppression, Channel.WHATSAPP, None, "x@agro.ro") is None


def test_the_earliest_entry_for_a_value_is_kept() -> None:
    """Suppressed twice, a contact reports its first suppression."""
    later = datetime(2025, 5, 1, tzinfo=UTC)
    suppression = SuppressionList.from_entries(
        [
            email_entry("ion@agro.ro", reason="COMPLAINT", added_at=later),
            email_entry("ION@agro.ro", reason="HARD_BOUNCE", added_at=AT),
        ]
    )
    found = check_suppression(suppression, phone=None, email="ion@agro.ro")
    assert found is not None
    assert found.reason == "HARD_BOUNCE"
    assert len(suppression) == 1


def test_adding_entries_returns_a_new_list() -> None:
    """with_entries leaves the original list untouched."""
    empty = SuppressionList.from_entries([])
    grown = empty.with_entries([domain_entry("agro.ro", reason="IMPORT", added_at=AT)])
    assert len(empty) == 0
    assert check_suppression(grown, phone=None, email="x@agro.ro") is not None


@pytest.mark.parametrize(
    ("kind", "value"),
    [("phone", "0722 123 456"), ("email", "Ion@agro.ro"), ("domain", "@agro.ro")],
)
def test_an_entry_built_from_a_raw_value_is_refused(kind: str, value: str) -> None:
    """A SuppressionEntry holds normalised values only, or lookups would miss it."""
    with pytest.raises(InvalidContact, match="not normalised"):
        SuppressionEntry(kind=kind, value=value, reason="MANUAL", added_at=AT)  # type: ignore[arg-type]
