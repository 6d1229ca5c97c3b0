"""The sequences and templates the engine works from, and who the messages come from.

The default catalogue ships as data (`cerniq_outreach/data/catalog.json`): the default cold
sequence (WhatsApp first touch, WhatsApp follow-up, cold email, warm email to leads who
engaged), a warm sequence a human may start after a reply, their templates with spintax and
A/B versions, and the sender's identity every first message carries. A tenant edits it by
pointing `load_catalog` at a copy of that file (the HTTP API edits it later).

Loading validates everything at once: every template (`validate_template`), every sequence
(`validate`), and that each step's template exists and is for the step's channel. A bad
file is refused whole, with every problem named, before a single message is rendered.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from cerniq_outreach.domain.enums import Channel
from cerniq_outreach.domain.errors import SequenceError, TemplateError
from cerniq_outreach.domain.sequences import Sequence, validate
from cerniq_outreach.domain.templates import (
    RenderedMessage,
    Template,
    TemplateVersion,
    choose_version,
    render,
    validate_template,
)

if TYPE_CHECKING:
    from cerniq_outreach.domain.events import Company
    from cerniq_outreach.domain.sequences import SequenceStep


class CatalogError(ValueError):
    """The catalogue file cannot be used; the message names every problem."""


class Sender(msgspec.Struct, frozen=True, kw_only=True):
    """Who the messages come from: the identity every first message carries."""

    name: str
    company: str
    email: str
    reply_to: str | None = None
    unsubscribe_base_url: str


class _CatalogFile(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    sender: Sender
    default_sequence: str
    sequences: tuple[Sequence, ...]
    templates: tuple[Template, ...]


class Catalog:
    """Sequences and templates by id, checked against each other."""

    def __init__(
        self,
        *,
        sender: Sender,
        default_sequence: str,
        sequences: tuple[Sequence, ...],
        templates: tuple[Template, ...],
    ) -> None:
        self.sender = sender
        self.default_sequence = default_sequence
        self._sequences = {s.sequence_id: s for s in sequences}
        self._templates = {t.template_id: t for t in templates}
        problems = _problems(self, sequences, templates)
        if problems:
            raise CatalogError("; ".join(problems))

    @property
    def sequences(self) -> tuple[Sequence, ...]:
        """Every sequence."""
        return tuple(self._sequences.values())

    def sequence(self, sequence_id: str) -> Sequence:
        """The sequence `sequence_id`; `SequenceError` when there is none."""
        try:
            return self._sequences[sequence_id]
        except KeyError:
            known = ", ".join(sorted(self._sequences))
            raise SequenceError(f"no sequence {sequence_id!r} (known: {known})") from None

    def has_sequence(self, sequence_id: str) -> bool:
        """Whether `sequence_id` names a sequence of the catalogue."""
        return sequence_id in self._sequences

    def template(self, template_id: str) -> Template:
        """The template `template_id`; `TemplateError` when there is none."""
        try:
            return self._templates[template_id]
        except KeyError:
            raise TemplateError(f"no template {template_id!r}") from None

    def version(self, template_id: str, version: int) -> TemplateVersion:
        """One version of a template (a queued message names the version it was rendered from)."""
        for candidate in self.template(template_id).versions:
            if candidate.version == version:
                return candidate
        raise TemplateError(f"template {template_id!r} has no version {version}")

    def render_step(
        self, step: SequenceStep, *, tenant_id: str, lead_id: str, company: Company
    ) -> RenderedMessage:
        """The lead's A/B variant of the step's template, rendered for the lead."""
        version = choose_version(self.template(step.template_id), lead_id)
        return self.render_version(
            version, tenant_id=tenant_id, lead_id=lead_id, company=company, step=step.number
        )

    def render_version(
        self,
        version: TemplateVersion,
        *,
        tenant_id: str,
        lead_id: str,
        company: Company,
        step: int | None,
    ) -> RenderedMessage:
        """Render one version with the lead's and the sender's values (deterministic)."""
        return render(
            version, self.variables(tenant_id, lead_id, company), lead_id=lead_id, step=step
        )

    def variables(self, tenant_id: str, lead_id: str, company: Company) -> dict[str, str]:
        """The values a template may use: the company's, the sender's, the opt-out link."""
        values = {
            "company_name": company.name,
            "sender_name": self.sender.name,
            "sender_company": self.sender.company,
            "unsubscribe_url": self.unsubscribe_url(tenant_id, lead_id),
        }
        optional = {
            "contact_name": company.contact_name,
            "county": company.county,
            "fiscal_code": company.fiscal_code,
        }
        # A missing optional value is left out, so the template's default applies.
        values.update({name: value for name, value in optional.items() if value})
        return values

    def unsubscribe_url(self, tenant_id: str, lead_id: str) -> str:
        """The lead's one-click opt-out link."""
        return f"{self.sender.unsubscribe_base_url.rstrip('/')}/{tenant_id}/{lead_id}"


def _problems(
    catalog: Catalog, sequences: tuple[Sequence, ...], templates: tuple[Template, ...]
) -> list[str]:
    problems: list[str] = []
    for kind, ids in (
        ("sequence", [s.sequence_id for s in sequences]),
        ("template", [t.template_id for t in templates]),
    ):
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            problems.append(f"{kind} ids repeated: {', '.join(repeated)}")
    for template in templates:
        try:
            validate_template(template)
        except TemplateError as exc:
            problems.append(str(exc))
    by_id = {t.template_id: t for t in templates}
    for sequence in sequences:
        problems.extend(_sequence_problems(sequence, by_id))
    if not catalog.has_sequence(catalog.default_sequence):
        problems.append(f"default sequence {catalog.default_sequence!r} is not in the catalogue")
    return problems


def _sequence_problems(sequence: Sequence, templates: dict[str, Template]) -> list[str]:
    problems: list[str] = []
    try:
        validate(sequence)
    except SequenceError as exc:
        problems.append(f"sequence {sequence.sequence_id!r}: {exc}")
    for step in sequence.steps:
        found = templates.get(step.template_id)
        where = f"sequence {sequence.sequence_id!r} step {step.number}"
        if found is None:
            problems.append(f"{where}: no template {step.template_id!r}")
        elif found.channel is not step.channel:
            problems.append(
                f"{where}: template {step.template_id!r} is for {found.channel},"
                f" the step sends {step.channel}"
            )
        if step.channel is Channel.EMAIL_COLD and not step.campaign_id:
            problems.append(f"{where}: a cold-email step names its Instantly campaign")
    return problems


def load_catalog(path: Path | None = None) -> Catalog:
    """The catalogue in `path`, or the shipped default; `CatalogError` names what is wrong."""
    if path is None:
        raw = resources.files("cerniq_outreach.data").joinpath("catalog.json").read_bytes()
        where = "the shipped catalogue"
    else:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise CatalogError(f"cannot read {path}: {exc.strerror}") from None
        where = str(path)
    try:
        parsed = msgspec.json.decode(raw, type=_CatalogFile)
    except msgspec.DecodeError as exc:
        raise CatalogError(f"{where}: {exc}") from None
    try:
        return Catalog(
            sender=parsed.sender,
            default_sequence=parsed.default_sequence,
            sequences=parsed.sequences,
            templates=parsed.templates,
        )
    except CatalogError as exc:
        raise CatalogError(f"{where}: {exc}") from None
