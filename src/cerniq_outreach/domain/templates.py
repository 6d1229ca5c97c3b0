"""Message templates: versions with weights (A/B), spintax bodies and declared variables.

Rendering is a pure function of (version, variable values, lead, step): spin choices come
from a `random.Random` seeded with a SHA-256 of the lead, step, template id and version, so a
retry renders the same text and the same `content_hash`. The variant a lead gets is chosen
the same way, from a hash of the template id and the lead.

`content_hash` is the SHA-256 hex digest of the UTF-8 bytes of the subject, a line feed, and
the text, with a missing subject counted as the empty string. Events store it: never change
how it is computed.
"""

from __future__ import annotations

import functools
import hashlib
import random
import re
from typing import TYPE_CHECKING

import msgspec

from cerniq_outreach.domain.enums import Channel
from cerniq_outreach.domain.errors import TemplateError
from cerniq_outreach.domain.spintax import (
    Segment,
    TemplateSyntaxError,
    is_variable_name,
    parse,
    spin,
    variable_names,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

EMAIL_CHANNELS = frozenset({Channel.EMAIL_COLD, Channel.EMAIL_WARM})

_SPACE_RUN = re.compile(r" {2,}")
_LINE_EDGE_SPACES = re.compile(r"^ +| +$", re.MULTILINE)


class TemplateVariable(msgspec.Struct, frozen=True, kw_only=True):
    """A variable a version declares; an optional one falls back to `default`."""

    name: str
    required: bool = True
    default: str = ""


class TemplateVersion(msgspec.Struct, frozen=True, kw_only=True):
    """One immutable revision of a template; `weight` is its share of leads in A/B tests."""

    template_id: str
    version: int
    body: str
    subject: str | None = None
    has_media: bool = False
    weight: int = 1
    variables: tuple[TemplateVariable, ...] = ()


class Template(msgspec.Struct, frozen=True, kw_only=True):
    """A named template for one channel and all its versions."""

    template_id: str
    name: str
    channel: Channel
    versions: tuple[TemplateVersion, ...]


class RenderedMessage(msgspec.Struct, frozen=True, kw_only=True):
    """The text (and subject, for email) ready to send, with what produced it."""

    text: str
    subject: str | None
    template_id: str
    template_version: int
    content_hash: str
    has_media: bool


@functools.lru_cache(maxsize=1024)
def _parsed(source: str) -> Segment:
    # Versions are immutable and rendered once per lead, so each source is parsed once.
    # Safe to cache: the tree is frozen and errors are not cached (they re-raise each time).
    return parse(source)


def validate_template(template: Template) -> None:
    """Check a template before it is stored or used.

    Args:
        template: The template with all its versions.

    Raises:
        TemplateError: Listing every problem found: a spintax syntax error, a variable used but
            not declared (or declared twice, or badly named), a negative weight, no version with
            a positive weight, a missing subject on an email channel (or a subject elsewhere),
            an empty body without media, a version number below 1 or repeated, or a version
            belonging to another template.
    """
    problems: list[str] = []
    if not template.versions:
        problems.append("no versions")
    seen: set[int] = set()
    for version in template.versions:
        if version.version in seen:
            problems.append(f"version {version.version} appears more than once")
        seen.add(version.version)
        problems.extend(
            f"version {version.version}: {problem}"
            for problem in _version_problems(template, version)
        )
    if template.versions and all(version.weight <= 0 for version in template.versions):
        problems.append("no version has a positive weight")
    if problems:
        raise TemplateError(f"template {template.template_id!r}: " + "; ".join(problems))


def _version_problems(template: Template, version: TemplateVersion) -> Iterable[str]:
    if version.template_id != template.template_id:
        yield f"belongs to template {version.template_id!r}"
    if version.version < 1:
        yield "version numbers start at 1"
    if version.weight < 0:
        yield f"weight {version.weight} is negative"
    if not version.body.strip() and not version.has_media:
        yield "empty body and no media"
    if template.channel in EMAIL_CHANNELS:
        if version.subject is None or not version.subject.strip():
            yield f"{template.channel} needs a subject"
    elif version.subject is not None:
        yield f"{template.channel} has no subject line"
    yield from _variable_problems(version)


def _variable_problems(version: TemplateVersion) -> Iterable[str]:
    declared: set[str] = set()
    for variable in version.variables:
        if not is_variable_name(variable.name):
            yield f"invalid variable name {variable.name!r}"
        if variable.name in declared:
            yield f"variable {variable.name!r} declared twice"
        declared.add(variable.name)
    for part, source in (("body", version.body), ("subject", version.subject)):
        if source is None:
            continue
        try:
            used = variable_names(_parsed(source))
        except TemplateSyntaxError as error:
            yield f"{part}: {error}"
            continue
        if undeclared := sorted(used - declared):
            yield f"{part} uses undeclared variable(s) {', '.join(undeclared)}"


def render(
    version: TemplateVersion,
    variables: Mapping[str, str],
    *,
    lead_id: str,
    step: int | None,
) -> RenderedMessage:
    """Render a version for one lead, deterministically for (lead, step, template, version).

    Whitespace is tidied after spinning (see `tidy_whitespace`), so an empty optional variable
    leaves no double space behind.

    Args:
        version: The version to render.
        variables: Values by name; undeclared names are ignored. Values are inserted literally:
            a value holding `{a|b}` or `{{x}}` comes out unchanged.
        lead_id: The lead the message is for.
        step: The sequence step, or None for a message outside a sequence.

    Returns:
        The rendered message with its `content_hash`.

    Raises:
        TemplateError: A declared required variable is missing or blank (all are named), the
            body or subject uses an undeclared variable, or the spintax is malformed.
    """
    body_tree = _parsed(version.body)
    subject_tree = None if version.subject is None else _parsed(version.subject)
    used = variable_names(body_tree) | (
        frozenset() if subject_tree is None else variable_names(subject_tree)
    )
    label = f"template {version.template_id!r} version {version.version}"
    if undeclared := sorted(used - {variable.name for variable in version.variables}):
        raise TemplateError(f"{label} uses undeclared variable(s) {', '.join(undeclared)}")
    values = _resolve(version.variables, variables, label)
    text = tidy_whitespace(spin(body_tree, values, _rng("body", version, lead_id, step)))
    subject = None
    if subject_tree is not None:
        subject = tidy_whitespace(
            spin(subject_tree, values, _rng("subject", version, lead_id, step))
        )
    return RenderedMessage(
        text=text,
        subject=subject,
        template_id=version.template_id,
        template_version=version.version,
        content_hash=content_hash(text, subject),
        has_media=version.has_media,
    )


def _resolve(
    declared: tuple[TemplateVariable, ...], given: Mapping[str, str], label: str
) -> dict[str, str]:
    # Every declared required variable must be present, even if the spin would not reach
    # it: whether a message is refused must not depend on which alternative was drawn.
    values: dict[str, str] = {}
    missing: list[str] = []
    for variable in declared:
        value = given.get(variable.name)
        if value is not None and value.strip():
            values[variable.name] = value
        elif variable.required:
            missing.append(variable.name)
        else:
            values[variable.name] = variable.default
    if missing:
        raise TemplateError(f"{label}: missing required variable(s) {', '.join(sorted(missing))}")
    return values


def _rng(part: str, version: TemplateVersion, lead_id: str, step: int | None) -> random.Random:
    # JSON of a list keeps the key unambiguous (no separator can be forged by an id), and
    # `part` gives body and subject independent draws so editing one never reshuffles the other.
    key = msgspec.json.encode([part, lead_id, step, version.template_id, version.version])
    return random.Random(int.from_bytes(hashlib.sha256(key).digest(), "big"))  # noqa: S311 - not crypto


def tidy_whitespace(text: str) -> str:
    """Collapse runs of spaces to one, drop spaces at line starts and ends, strip the text.

    Only the space character is touched (tabs and newlines are kept), so line structure
    survives while gaps left by empty optional variables or empty alternatives disappear.
    """
    return _LINE_EDGE_SPACES.sub("", _SPACE_RUN.sub(" ", text)).strip()


def content_hash(text: str, subject: str | None) -> str:
    """SHA-256 hex of the UTF-8 subject, a line feed and the text; no subject counts as ""."""
    return hashlib.sha256(f"{subject or ''}\n{text}".encode()).hexdigest()


def choose_version(template: Template, lead_id: str) -> TemplateVersion:
    """Pick the lead's A/B variant: weighted, and always the same for (template, lead).

    A SHA-256 of (template id, lead id) is reduced modulo the total weight and located among
    the versions' cumulative weights, taken in version-number order so the tuple's order does
    not matter. A version of weight 0 (or less) is never chosen.

    Raises:
        TemplateError: No version has a positive weight.
    """
    candidates = sorted(
        (version for version in template.versions if version.weight > 0),
        key=lambda version: version.version,
    )
    total = sum(version.weight for version in candidates)
    if total == 0:
        raise TemplateError(f"template {template.template_id!r}: no version has a positive weight")
    key = msgspec.json.encode([template.template_id, lead_id])
    # A 256-bit number modulo a small total: the bias is far below anything measurable.
    point = int.from_bytes(hashlib.sha256(key).digest(), "big") % total
    for version in candidates:
        if point < version.weight:
            return version
        point -= version.weight
    raise AssertionError("unreachable: point < total")  # pragma: no cover
