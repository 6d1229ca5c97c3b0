"""Contact values in one canonical form: phones in E.164, emails and domains lowercased.

Suppression, deduplication and consent all compare contacts. Comparing raw strings would let
"0722 123 456" slip past a suppressed "+40722123456", so everything that stores or compares a
phone, an email or an email domain goes through here first.

Error messages quote the raw value: they go back to the operator who supplied it (an import
report, an API problem detail) and name what to fix.
"""

from __future__ import annotations

import re

from cerniq_outreach.domain.errors import ConfigurationError, DomainError

ROMANIA = "40"
"""Romania's country calling code, the default for numbers written without one."""

E164_MAX_DIGITS = 15
"""E.164 caps a number at 15 digits, country code included."""

E164_MIN_DIGITS = 7
"""The shortest numbers in service (Niue: +683 and four digits) have seven digits in all."""

ROMANIAN_NATIONAL_DIGITS = 9
"""A Romanian national significant number: the nine digits after the trunk 0 (or after +40)."""

# Spreadsheets store a phone column as a number and drop its leading 0 ("722123456").
# Only geographic (2x, 3x) and mobile (7x) numbers are repaired that way: they are what a
# company lists, and a narrow rule keeps other 9-digit strings (fiscal codes) out.
_BARE_ROMANIAN_FIRST_DIGITS = frozenset("237")

_DIGITS = frozenset("0123456789")
_PHONE_SEPARATORS = frozenset("-./()")

# "+40 (0) 722 …", "+49 (0)30 …": the bracketed 0 is the national trunk prefix, which is
# dropped when the number is dialled from abroad. It is a trunk mark only after a country
# code (a digit before it); a leading "(0)722 …" is a national number and keeps its 0.
_TRUNK_MARK = re.compile(r"(?<=\d)[\s.\-]*\(\s*0\s*\)")

# Characters that cannot appear unquoted in an address; seeing one usually means a pasted
# display name ("Ion <ion@agro.ro>") or a list ("a@x.ro; b@y.ro").
_EMAIL_FORBIDDEN = frozenset('()<>[]:;,\\"')


class InvalidContact(DomainError):
    """A phone number, email address or email domain cannot be read or is malformed."""

    code = "INVALID_CONTACT"


def normalize_phone(raw: str, default_country_code: str = ROMANIA) -> str:
    """Return `raw` as an E.164 number, e.g. ``+40722123456``.

    Accepted forms: international with ``+`` or ``00`` ("+40 722 123 456", "0040722123456",
    "+49 30 1234567"), with the trunk mark "(0)" after the country code ("+40 (0) 722 …"),
    national with the trunk 0 ("0722 123 456", "021 312 3456", "(0722) 123.456"), and the
    country code without ``+`` ("40722123456"). Spaces, ``-``, ``.``, ``/`` and brackets
    separate digit groups and are ignored. For Romania (+40) a 9-digit geographic or mobile
    number that lost its leading 0 in a spreadsheet ("722123456") is accepted too, as is a
    trunk 0 written after the country code ("+40 0722 …").

    Romanian numbers must have exactly nine digits after the 0 or +40; other countries are
    only checked against E.164's length limits. Normalising an E.164 number returns it
    unchanged.

    Args:
        raw: The number as written by a person or a spreadsheet.
        default_country_code: Country calling code (digits, no ``+``) of national numbers.

    Returns:
        ``+`` followed by the country code and the national significant number.

    Raises:
        InvalidContact: Empty, letters or stray characters, no readable country code, or
            too few or too many digits.
        ConfigurationError: `default_country_code` is not a country calling code.
    """
    if not (
        1 <= len(default_country_code) <= 3  # noqa: PLR2004 - country codes have 1 to 3 digits
        and set(default_country_code) <= _DIGITS
        and not default_country_code.startswith("0")
    ):
        raise ConfigurationError(f"{default_country_code!r} is not a country calling code")
    text = raw.strip()
    if not text:
        raise InvalidContact("the phone number is empty")
    international = text.startswith("+")
    digits = _phone_digits(_TRUNK_MARK.sub("", text.removeprefix("+")), raw)
    if international:
        return _e164(digits, raw)
    if digits.startswith("00"):
        return _e164(digits[2:], raw)
    if digits.startswith("0"):
        return _e164(default_country_code + digits[1:], raw)
    if digits.startswith(default_country_code):
        return _e164(digits, raw)
    if (
        default_country_code == ROMANIA
        and len(digits) == ROMANIAN_NATIONAL_DIGITS
        and digits[0] in _BARE_ROMANIAN_FIRST_DIGITS
    ):
        return _e164(ROMANIA + digits, raw)
    raise InvalidContact(
        f"phone {raw!r} has neither a country code nor a trunk 0: "
        "write it as +<country code> <number> or 0<national number>"
    )


def _phone_digits(text: str, raw: str) -> str:
    """The digits of `text`, once separators are dropped; anything else is refused."""
    digits: list[str] = []
    for char in text:
        if char in _DIGITS:
            digits.append(char)
        elif char.isspace() or char in _PHONE_SEPARATORS:
            continue
        elif char.isalpha():
            raise InvalidContact(f"phone {raw!r} contains letters; a phone number has digits only")
        elif char == "+":
            raise InvalidContact(f"phone {raw!r} has a '+' that is not at the start")
        else:
            raise InvalidContact(f"phone {raw!r} contains {char!r}, which is not a digit")
    if not digits:
        raise InvalidContact(f"phone {raw!r} has no digits")
    return "".join(digits)


def _e164(digits: str, raw: str) -> str:
    """Check `digits` (country code first, no ``+``) and return them as E.164."""
    if digits.startswith("0"):
        raise InvalidContact(f"phone {raw!r}: a country code never starts with 0")
    if digits.startswith(ROMANIA):
        national = digits[len(ROMANIA) :]
        # "+40 0722 123 456": the trunk 0 kept after the country code. Romanian national
        # numbers never start with 0, so dropping it cannot change which number is meant.
        if len(national) == ROMANIAN_NATIONAL_DIGITS + 1 and national.startswith("0"):
            national = national[1:]
        if len(national) != ROMANIAN_NATIONAL_DIGITS or national.startswith("0"):
            raise InvalidContact(
                f"phone {raw!r}: a Romanian number has {ROMANIAN_NATIONAL_DIGITS} digits "
                f"after the 0 or +40, not {len(national)}"
            )
        return f"+{ROMANIA}{national}"
    if len(digits) > E164_MAX_DIGITS:
        raise InvalidContact(
            f"phone {raw!r} has {len(digits)} digits; E.164 allows at most {E164_MAX_DIGITS}"
        )
    if len(digits) < E164_MIN_DIGITS:
        raise InvalidContact(
            f"phone {raw!r} has {len(digits)} digits; too few for a phone number"
            f" (at least {E164_MIN_DIGITS} with the country code)"
        )
    return f"+{digits}"


def normalize_email(raw: str) -> str:
    r"""Return `raw` trimmed and lowercased, after checking it looks like an address.

    The whole address is lowercased, not only the domain. RFC 5321 lets a server treat the
    local part as case-sensitive, but no mainstream provider does, and the address is used
    to match suppressions: "Ion@agro.ro" must hit an entry for "ion@agro.ro". Two addresses
    differing only in case are treated as one person.

    The check is deliberately loose (this is not an RFC 5322 parser): exactly one ``@``, a
    non-empty local part, a domain with at least one dot and no empty label, no whitespace
    and none of ``()<>[]:;,\"`` (a pasted display name or list).

    Args:
        raw: The address as written.

    Returns:
        The address, trimmed and lowercased.

    Raises:
        InvalidContact: The text is not a single plausible email address.
    """
    text = raw.strip()
    if not text:
        raise InvalidContact("the email address is empty")
    if any(char.isspace() for char in text):
        raise InvalidContact(f"email {raw!r} contains spaces")
    forbidden = sorted(set(text) & _EMAIL_FORBIDDEN)
    if forbidden:
        raise InvalidContact(f"email {raw!r} contains {''.join(forbidden)!r}")
    local, at, domain = text.rpartition("@")
    if not at:
        raise InvalidContact(f"email {raw!r} has no '@'")
    if "@" in local:
        raise InvalidContact(f"email {raw!r} has more than one '@'")
    if not local:
        raise InvalidContact(f"email {raw!r} has nothing before the '@'")
    return f"{local.lower()}@{_checked_domain(domain, f'email {raw!r}')}"


def email_domain(email: str) -> str:
    """Return the domain of `email`, lowercased: ``"Ion@Mail.Agro.ro"`` gives ``"mail.agro.ro"``.

    Raises:
        InvalidContact: `email` is not a plausible address (see `normalize_email`).
    """
    return normalize_email(email).rpartition("@")[2]


def normalize_domain(raw: str) -> str:
    """Return an email domain trimmed, lowercased and without a leading ``@``.

    ``" @Agro.RO "`` gives ``"agro.ro"``. The domain needs at least one dot, so a bare
    top-level domain ("ro") is refused: it would match half a country.

    Raises:
        InvalidContact: Empty, whitespace, ``@`` inside, no dot or an empty label.
    """
    text = raw.strip()
    return _checked_domain(text.removeprefix("@"), f"domain {raw!r}")


def _checked_domain(domain: str, what: str) -> str:
    """Lowercase `domain` after checking it; `what` names the value in error messages."""
    if not domain:
        raise InvalidContact(f"{what} has an empty domain")
    if any(char.isspace() for char in domain):
        raise InvalidContact(f"{what} has spaces in its domain")
    if "@" in domain:
        raise InvalidContact(f"{what} has an '@' inside its domain")
    if "." not in domain:
        raise InvalidContact(f"{what}: the domain {domain!r} has no dot")
    if "" in domain.split("."):
        raise InvalidContact(
            f"{what}: the domain {domain!r} has an empty label ('..' or an edge dot)"
        )
    return domain.lower()
