"""Concrete examples for spintax parsing, template validation, rendering and A/B choice."""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest

from cerniq_outreach.domain.enums import Channel
from cerniq_outreach.domain.errors import TemplateError
from cerniq_outreach.domain.spintax import (
    MAX_DEPTH,
    TemplateSyntaxError,
    expansion_count,
    expansions,
    parse,
)
from cerniq_outreach.domain.templates import (
    Template,
    TemplateVariable,
    TemplateVersion,
    choose_version,
    content_hash,
    render,
    validate_template,
)

GREETING = "{Bună ziua|Salut|Bună} {{contact_name}}, {vă|îți} scriu {de la|din partea} {{company}}."


def whatsapp_version(body: str, *variables: TemplateVariable, **fields: object) -> TemplateVersion:
    """A version of template `tpl` with the given body and declared variables."""
    return TemplateVersion(
        template_id="tpl",
        version=int(str(fields.pop("version", 1))),
        body=body,
        variables=variables,
        **fields,  # type: ignore[arg-type]
    )


def template(channel: Channel, *versions: TemplateVersion) -> Template:
    """Template `tpl` on `channel` holding `versions`."""
    return Template(template_id="tpl", name="Prima atingere", channel=channel, versions=versions)


REQUIRED = (TemplateVariable(name="contact_name"), TemplateVariable(name="company"))


# --- spintax ---------------------------------------------------------------------------------


def test_nested_groups_expand_to_every_combination() -> None:
    """`{a|{b|c} d}` has three expansions: a, b d, c d."""
    tree = parse("{a|{b|c} d}")
    assert list(expansions(tree)) == ["a", "b d", "c d"]
    assert expansion_count(tree) == 3


def test_empty_alternatives_are_allowed() -> None:
    """`Salut{|, } Ion` may or may not carry the comma."""
    assert list(expansions(parse("Salut{|,} Ion"))) == ["Salut Ion", "Salut, Ion"]


def test_group_may_start_with_a_nested_group_or_a_variable() -> None:
    """`{{` is a variable only when `}}` follows with no brace between; else it opens groups."""
    assert list(expansions(parse("{{b|c} d|e}"))) == ["b d", "c d", "e"]
    assert list(expansions(parse("{{{name}}|x}"), {"name": "Ion"})) == ["Ion", "x"]
    assert list(expansions(parse("{a|{b|c}}"))) == ["a", "b", "c"]


def test_whitespace_inside_variable_braces_is_tolerated() -> None:
    """`{{ contact_name }}` is the same variable as `{{contact_name}}`."""
    assert list(expansions(parse("Bună {{ contact_name }}!"), {"contact_name": "Ion"})) == [
        "Bună Ion!"
    ]


def test_romanian_diacritics_survive_parsing() -> None:
    """ă â î ș ț (and capitals) are ordinary text."""
    source = "{Știți|Ați auzit} că în județul {{judet}} grâul e țintă?"
    assert list(expansions(parse(source), {"judet": "Brăila"})) == [
        "Știți că în județul Brăila grâul e țintă?",
        "Ați auzit că în județul Brăila grâul e țintă?",
    ]


@pytest.mark.parametrize(
    ("source", "position", "fragment"),
    [
        ("Salut }", 6, "'}' without a matching '{'"),
        ("Salut|Bună", 5, "'|' outside"),
        ("{Salut|Bună", 0, "never closed"),
        ("{a|{b|c}", 0, "never closed"),
        ("x {{}} y", 2, "empty variable name"),
        ("x {{  }} y", 2, "empty variable name"),
        ("{{1nume}}", 0, "invalid variable name '1nume'"),
        ("{{nume firmă}}", 0, "invalid variable name 'nume firmă'"),
        ("{{a|b}}", 0, "invalid variable name 'a|b'"),
        ("{{contact_name}}}", 16, "'}' without a matching '{'"),
    ],
)
def test_malformed_source_is_refused_with_its_position(
    source: str, position: int, fragment: str
) -> None:
    """Each syntax error names the 0-based position of the offending character."""
    with pytest.raises(TemplateSyntaxError) as refused:
        parse(source)
    assert refused.value.position == position
    assert fragment in str(refused.value)
    assert f"at position {position}" in str(refused.value)


def test_syntax_errors_are_template_errors() -> None:
    """Callers catching TemplateError also catch syntax errors."""
    with pytest.raises(TemplateError):
        parse("{")


def test_nesting_deeper_than_the_limit_is_refused() -> None:
    """Groups nest at most MAX_DEPTH deep, so hostile input cannot exhaust the stack."""
    # `{x` rather than `{`: a bare `{{a}}` at the core would read as a variable.
    assert list(expansions(parse("{x" * MAX_DEPTH + "}" * MAX_DEPTH))) == ["x" * MAX_DEPTH]
    with pytest.raises(TemplateSyntaxError, match="nested deeper") as refused:
        parse("{x" * (MAX_DEPTH + 1) + "}" * (MAX_DEPTH + 1))
    assert refused.value.position == 2 * MAX_DEPTH


# --- rendering -------------------------------------------------------------------------------


def test_render_fills_variables_and_keeps_diacritics() -> None:
    """A render is one spin of the body with the lead's values, diacritics intact."""
    version = whatsapp_version(GREETING, *REQUIRED)
    values = {"contact_name": "Ștefan Țăranu", "company": "Agroîntreprinderea Bârlad"}
    message = render(version, values, lead_id="lead-1", step=1)
    assert message.text in set(expansions(parse(GREETING), values))
    assert "Ștefan Țăranu" in message.text
    assert "Agroîntreprinderea Bârlad" in message.text
    assert message.subject is None
    assert (message.template_id, message.template_version) == ("tpl", 1)


def test_render_is_stable_for_the_same_key_and_varies_across_leads() -> None:
    """Same (lead, step, version) gives the same text; different leads see different spins."""
    version = whatsapp_version(GREETING, *REQUIRED)
    values = {"contact_name": "Ion", "company": "Agro SRL"}
    first = render(version, values, lead_id="lead-7", step=2)
    assert render(version, values, lead_id="lead-7", step=2) == first
    texts = {render(version, values, lead_id=f"lead-{n}", step=2).text for n in range(60)}
    assert len(texts) > 1


def test_render_depends_on_the_step() -> None:
    """The step is part of the seed: a follow-up need not repeat the first message's wording."""
    version = whatsapp_version(GREETING, *REQUIRED)
    values = {"contact_name": "Ion", "company": "Agro SRL"}
    texts = {render(version, values, lead_id="lead-7", step=step).text for step in range(30)}
    assert len(texts) > 1


def test_email_subject_is_rendered_with_its_own_spintax() -> None:
    """An email version's subject is spun and filled like the body."""
    version = whatsapp_version(
        "Bună ziua {{contact_name}},\n\nVă scriu despre {{company}}.",
        *REQUIRED,
        subject="{Întrebare|O idee} pentru {{company}}",
    )
    message = render(
        version, {"contact_name": "Ana", "company": "Ferma Sălaj"}, lead_id="l", step=1
    )
    assert message.subject in {"Întrebare pentru Ferma Sălaj", "O idee pentru Ferma Sălaj"}
    assert message.text == "Bună ziua Ana,\n\nVă scriu despre Ferma Sălaj."


def test_missing_required_variables_are_all_named() -> None:
    """The error lists every missing required variable; nothing is rendered."""
    version = whatsapp_version(GREETING, *REQUIRED)
    with pytest.raises(
        TemplateError, match=r"missing required variable\(s\) company, contact_name"
    ):
        render(version, {}, lead_id="lead-1", step=1)


def test_blank_required_variable_is_refused() -> None:
    """A whitespace-only value counts as missing."""
    version = whatsapp_version(GREETING, *REQUIRED)
    with pytest.raises(TemplateError, match="contact_name"):
        render(version, {"contact_name": "  ", "company": "Agro"}, lead_id="l", step=1)


def test_required_variable_is_needed_even_when_the_spin_skips_it() -> None:
    """Refusal never depends on which alternative was drawn."""
    version = whatsapp_version(
        "{Salut|Bună {{contact_name}}}", TemplateVariable(name="contact_name")
    )
    for lead in ("a", "b", "c", "d", "e", "f"):
        with pytest.raises(TemplateError, match="contact_name"):
            render(version, {}, lead_id=lead, step=1)


def test_missing_optional_variable_uses_default_without_double_spaces() -> None:
    """An empty optional variable leaves no doubled or trailing space behind."""
    version = whatsapp_version(
        "Bună ziua {{title}} {{contact_name}}, {{ps}}",
        TemplateVariable(name="title", required=False),
        TemplateVariable(name="contact_name"),
        TemplateVariable(name="ps", required=False, default="O zi bună!"),
    )
    message = render(version, {"contact_name": "Ion"}, lead_id="l", step=None)
    assert message.text == "Bună ziua Ion, O zi bună!"
    titled = render(version, {"contact_name": "Ion", "title": "dle"}, lead_id="l", step=None)
    assert titled.text == "Bună ziua dle Ion, O zi bună!"


def test_values_are_inserted_literally() -> None:
    """A value that looks like spintax or a placeholder is not parsed."""
    version = whatsapp_version("Firma: {{company}}", TemplateVariable(name="company"))
    message = render(version, {"company": "{A|B} {{contact_name}}"}, lead_id="l", step=1)
    assert message.text == "Firma: {A|B} {{contact_name}}"


def test_undeclared_variable_is_refused_at_render() -> None:
    """A body using a variable its version does not declare never renders."""
    version = whatsapp_version("Salut {{contact_name}}")
    with pytest.raises(TemplateError, match="undeclared variable\\(s\\) contact_name"):
        render(version, {"contact_name": "Ion"}, lead_id="l", step=1)


def test_content_hash_covers_subject_and_text() -> None:
    """content_hash is sha256 hex of subject, a line feed, and text (no subject: "")."""
    version = whatsapp_version("Salut", subject="Ofertă")
    message = render(version, {}, lead_id="l", step=1)
    assert message.content_hash == hashlib.sha256("Ofertă\nSalut".encode()).hexdigest()
    assert content_hash("Salut", None) == hashlib.sha256(b"\nSalut").hexdigest()


def test_has_media_is_carried_to_the_rendered_message() -> None:
    """A WhatsApp version with media renders a message flagged as carrying media."""
    message = render(whatsapp_version("Catalog", has_media=True), {}, lead_id="l", step=1)
    assert message.has_media


# --- A/B choice ------------------------------------------------------------------------------


def test_ab_split_follows_the_weights_over_ten_thousand_leads() -> None:
    """With weights 1:3, about a quarter of 10,000 fixed leads get version 1."""
    chosen = template(
        Channel.WHATSAPP,
        whatsapp_version("A", version=1, weight=1),
        whatsapp_version("B", version=2, weight=3),
    )
    counts = Counter(choose_version(chosen, f"lead-{n:05d}").version for n in range(10_000))
    # Expected 2,500 with a standard deviation of ~43; the lead ids are fixed, so this cannot
    # flake, and a tolerance of ~5 sigma still catches a skewed or inverted split.
    assert abs(counts[1] - 2_500) < 220
    assert counts[1] + counts[2] == 10_000


def test_weight_zero_version_is_never_chosen() -> None:
    """A paused (weight 0) variant gets no leads at all."""
    chosen = template(
        Channel.WHATSAPP,
        whatsapp_version("A", version=1, weight=0),
        whatsapp_version("B", version=2, weight=1),
    )
    assert {choose_version(chosen, f"lead-{n}").version for n in range(1_000)} == {2}


def test_choice_needs_a_positive_weight() -> None:
    """With every weight at 0 there is nothing to choose."""
    chosen = template(Channel.WHATSAPP, whatsapp_version("A", weight=0))
    with pytest.raises(TemplateError, match="positive weight"):
        choose_version(chosen, "lead-1")


# --- validation ------------------------------------------------------------------------------


def test_valid_email_template_passes() -> None:
    """A cold email with subject, declared variables and two weighted versions is valid."""
    validate_template(
        template(
            Channel.EMAIL_COLD,
            whatsapp_version(GREETING, *REQUIRED, subject="Pentru {{company}}"),
            whatsapp_version(GREETING, *REQUIRED, version=2, subject="Salut", weight=0),
        )
    )


@pytest.mark.parametrize(
    ("channel", "versions", "fragment"),
    [
        (Channel.WHATSAPP, (), "no versions"),
        (
            Channel.WHATSAPP,
            (whatsapp_version("Salut {{contact_name}}"),),
            "body uses undeclared variable(s) contact_name",
        ),
        (
            Channel.EMAIL_WARM,
            (whatsapp_version("Salut", subject="Pentru {{company}}"),),
            "subject uses undeclared variable(s) company",
        ),
        (Channel.EMAIL_COLD, (whatsapp_version("Salut"),), "EMAIL_COLD needs a subject"),
        (Channel.EMAIL_WARM, (whatsapp_version("Salut", subject=" "),), "needs a subject"),
        (Channel.WHATSAPP, (whatsapp_version("Salut", subject="x"),), "has no subject"),
        (Channel.WHATSAPP, (whatsapp_version("Salut", weight=-1),), "weight -1 is negative"),
        (Channel.WHATSAPP, (whatsapp_version("Salut", weight=0),), "no version has a positive"),
        (
            Channel.WHATSAPP,
            (whatsapp_version("A"), whatsapp_version("B")),
            "version 1 appears more than once",
        ),
        (Channel.WHATSAPP, (whatsapp_version("A", version=0),), "start at 1"),
        (Channel.WHATSAPP, (whatsapp_version("{Salut"),), "body: '{' is never closed"),
        (Channel.WHATSAPP, (whatsapp_version(" "),), "empty body and no media"),
        (
            Channel.WHATSAPP,
            (whatsapp_version("x", TemplateVariable(name="a"), TemplateVariable(name="a")),),
            "'a' declared twice",
        ),
        (
            Channel.WHATSAPP,
            (whatsapp_version("x", TemplateVariable(name="nume firmă")),),
            "invalid variable name",
        ),
        (
            Channel.WHATSAPP,
            (TemplateVersion(template_id="other", version=1, body="x"),),
            "belongs to template 'other'",
        ),
    ],
)
def test_invalid_template_is_refused_with_a_clear_reason(
    channel: Channel, versions: tuple[TemplateVersion, ...], fragment: str
) -> None:
    """Each broken rule is named in the TemplateError message."""
    with pytest.raises(TemplateError) as refused:
        validate_template(template(channel, *versions))
    assert fragment in str(refused.value)


def test_media_only_whatsapp_version_may_have_an_empty_body() -> None:
    """A WhatsApp image with no caption is a valid version."""
    validate_template(template(Channel.WHATSAPP, whatsapp_version("", has_media=True)))


def test_validation_reports_every_problem_at_once() -> None:
    """All problems are listed together, so an editor can fix them in one pass."""
    with pytest.raises(TemplateError) as refused:
        validate_template(template(Channel.EMAIL_COLD, whatsapp_version("{{x}}", weight=-2)))
    message = str(refused.value)
    assert "needs a subject" in message
    assert "weight -2 is negative" in message
    assert "undeclared variable(s) x" in message
