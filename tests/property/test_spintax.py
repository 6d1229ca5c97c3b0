"""Spintax and template rendering: the rules every template and every render must obey.

Trees are generated first and printed to source, so each test knows what the parser must
find. Every generated group has at least two alternatives: `{{a|b}}` (one group wrapping
another and nothing else) reads as a variable with an invalid name, see `spintax.py`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from cerniq_outreach.domain.enums import Channel
from cerniq_outreach.domain.errors import TemplateError
from cerniq_outreach.domain.spintax import (
    Alternation,
    Node,
    Segment,
    TemplateSyntaxError,
    Text,
    Variable,
    expansion_count,
    expansions,
    parse,
    variable_names,
)
from cerniq_outreach.domain.templates import (
    Template,
    TemplateVariable,
    TemplateVersion,
    choose_version,
    render,
    tidy_whitespace,
)

if TYPE_CHECKING:
    import random

# Keeps `expansions` cheap enough to enumerate in every example.
MAX_EXPANSIONS = 300

names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,5}", fullmatch=True)

# Romanian letters and spaces are over-represented: they are what real templates hold.
texts = st.text(
    alphabet=st.one_of(
        st.sampled_from("aăâîșțAĂÂÎȘȚ ,.!?\n"),
        st.characters(exclude_characters="{}|", exclude_categories=["Cs"]),
    ),
    min_size=1,
    max_size=6,
)

# Values a lead may really have: no syntax characters, never blank.
values_text = st.tuples(
    st.sampled_from("aăâîșțIȘ"), st.text(alphabet="aăâîșțIȘ -.", max_size=7)
).map("".join)

leads = st.text(min_size=1, max_size=12)
steps = st.none() | st.integers(min_value=0, max_value=50)


def _segments(nodes: st.SearchStrategy[Node]) -> st.SearchStrategy[Segment]:
    return st.lists(nodes, max_size=3).map(lambda parts: Segment(parts=tuple(parts)))


def _alternations(nodes: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    return st.lists(_segments(nodes), min_size=2, max_size=3).map(
        lambda options: Alternation(options=tuple(options))
    )


nodes: st.SearchStrategy[Node] = st.recursive(
    st.one_of(texts.map(lambda value: Text(value=value)), names.map(lambda n: Variable(name=n))),
    _alternations,
    max_leaves=10,
)
trees = st.lists(nodes, max_size=4).map(lambda parts: Segment(parts=tuple(parts)))
small_trees = trees.filter(lambda tree: expansion_count(tree) <= MAX_EXPANSIONS)


def to_source(node: Node | Segment, *, padded: bool = False) -> str:
    """Print a tree as spintax source; `padded` writes `{{ name }}` instead of `{{name}}`."""
    match node:
        case Text(value=value):
            return value
        case Variable(name=name):
            return "{{ " + name + " }}" if padded else "{{" + name + "}}"
        case Alternation(options=options):
            return "{" + "|".join(to_source(option, padded=padded) for option in options) + "}"
        case Segment(parts=parts):
            return "".join(to_source(part, padded=padded) for part in parts)


def version_for(source: str, variable_names_: frozenset[str]) -> TemplateVersion:
    """A one-version template over `source` declaring every name as required."""
    return TemplateVersion(
        template_id="tpl",
        version=1,
        body=source,
        variables=tuple(TemplateVariable(name=name) for name in sorted(variable_names_)),
    )


def values_for(data: st.DataObject, tree: Segment) -> dict[str, str]:
    """Draw a non-blank, brace-free value for every variable in the tree."""
    return {name: data.draw(values_text, label=name) for name in sorted(variable_names(tree))}


@given(tree=small_trees, padded=st.booleans())
def test_parsing_printed_source_gives_the_same_expansions(tree: Segment, padded: bool) -> None:
    """Parsing the printed source of a tree yields exactly its expansions, in the same order."""
    parsed = parse(to_source(tree, padded=padded))
    assert list(expansions(parsed)) == list(expansions(tree))
    assert expansion_count(parsed) == expansion_count(tree)
    assert variable_names(parsed) == variable_names(tree)


@settings(deadline=None)
@given(tree=small_trees, lead=leads, step=steps, data=st.data())
def test_rendered_text_is_one_of_the_expansions(
    tree: Segment, lead: str, step: int | None, data: st.DataObject
) -> None:
    """Every render is one of the tree's expansions (with values filled in), whitespace-tidied."""
    values = values_for(data, tree)
    message = render(
        version_for(to_source(tree), variable_names(tree)), values, lead_id=lead, step=step
    )
    assert message.text in {tidy_whitespace(text) for text in expansions(tree, values)}


@given(tree=trees, lead=leads, step=steps, data=st.data())
def test_rendering_is_deterministic_for_the_same_lead_step_and_version(
    tree: Segment, lead: str, step: int | None, data: st.DataObject
) -> None:
    """The same (lead, step, template, version) renders the same text and content hash."""
    values = values_for(data, tree)
    version = version_for(to_source(tree), variable_names(tree))
    first = render(version, values, lead_id=lead, step=step)
    again = render(version, dict(values), lead_id=lead, step=step)
    assert again == first


@given(tree=trees, lead=leads, step=steps, data=st.data())
def test_rendered_text_contains_no_spintax_syntax(
    tree: Segment, lead: str, step: int | None, data: st.DataObject
) -> None:
    """With brace-free values, no `{`, `}`, `|` (hence no `{{` or `}}`) survives rendering."""
    values = values_for(data, tree)
    message = render(
        version_for(to_source(tree), variable_names(tree)), values, lead_id=lead, step=step
    )
    assert not set(message.text) & set("{}|")


@given(tree=trees, lead=leads, data=st.data())
def test_missing_required_variable_is_refused_and_named(
    tree: Segment, lead: str, data: st.DataObject
) -> None:
    """Leaving out (or blanking) any required variable refuses the render, naming it."""
    used = variable_names(tree)
    assume(used)
    values = values_for(data, tree)
    dropped = data.draw(st.sampled_from(sorted(used)), label="dropped")
    blank = data.draw(st.booleans(), label="blank instead of absent")
    if blank:
        values[dropped] = data.draw(st.sampled_from(["", " ", "  \t"]), label="blank")
    else:
        del values[dropped]
    with pytest.raises(TemplateError) as refused:
        render(version_for(to_source(tree), used), values, lead_id=lead, step=1)
    assert str(refused.value).endswith(f"missing required variable(s) {dropped}")


@given(
    before=texts,
    after=texts,
    value=st.text(alphabet="{}|ab_ă", min_size=1, max_size=12).filter(str.strip),
    lead=leads,
)
def test_values_are_inserted_literally_never_parsed(
    before: str, after: str, value: str, lead: str
) -> None:
    """A value holding `{a|b}`, `{{x}}` or stray braces comes out exactly as given."""
    source = f"x{before}{{{{v}}}}{after}x"
    message = render(version_for(source, frozenset({"v"})), {"v": value}, lead_id=lead, step=None)
    assert message.text == tidy_whitespace(f"x{before}{value}{after}x")


@given(
    weights=st.lists(st.integers(min_value=0, max_value=5), min_size=1, max_size=5).filter(any),
    lead=leads,
    shuffle=st.randoms(use_true_random=False),
)
def test_choose_version_never_picks_weight_zero_and_is_deterministic(
    weights: list[int], lead: str, shuffle: random.Random
) -> None:
    """The chosen variant has a positive weight and depends only on (template, lead)."""
    versions = [
        TemplateVersion(template_id="tpl", version=number, body="Salut", weight=weight)
        for number, weight in enumerate(weights, start=1)
    ]
    template = Template(
        template_id="tpl", name="t", channel=Channel.WHATSAPP, versions=tuple(versions)
    )
    chosen = choose_version(template, lead)
    assert chosen.weight > 0
    assert choose_version(template, lead) == chosen
    shuffle.shuffle(versions)
    reordered = Template(
        template_id="tpl", name="t", channel=Channel.WHATSAPP, versions=tuple(versions)
    )
    assert choose_version(reordered, lead) == chosen


@given(tree=trees, brace=st.sampled_from("{}"), data=st.data())
def test_inserting_a_stray_brace_is_always_refused(
    tree: Segment, brace: str, data: st.DataObject
) -> None:
    """One extra `{` or `}` anywhere in a valid source is refused, never parsed differently."""
    # Text cannot hold a brace, variables use two of each and groups one of each, so any
    # source that parses has as many `{` as `}`: one extra brace can never parse.
    source = to_source(tree)
    at = data.draw(st.integers(min_value=0, max_value=len(source)), label="at")
    broken = source[:at] + brace + source[at:]
    with pytest.raises(TemplateSyntaxError) as refused:
        parse(broken)
    assert 0 <= refused.value.position < len(broken)


@given(tree=trees, data=st.data())
def test_deleting_one_brace_is_always_refused(tree: Segment, data: st.DataObject) -> None:
    """Removing any single `{` or `}` from a valid source is refused (braces no longer balance)."""
    source = to_source(tree)
    braces = [index for index, char in enumerate(source) if char in "{}"]
    assume(braces)
    at = data.draw(st.sampled_from(braces), label="at")
    with pytest.raises(TemplateSyntaxError):
        parse(source[:at] + source[at + 1 :])


@given(source=st.text(alphabet="{}| a_1\n", max_size=30))
def test_any_source_either_parses_or_is_refused_with_a_position(source: str) -> None:
    """Arbitrary text never crashes the parser: it parses, or raises with an in-range position."""
    outcome = _parse_or_error(source)
    if isinstance(outcome, TemplateSyntaxError):
        assert 0 <= outcome.position < len(source)
    else:
        assert source.count("{") == source.count("}")
        assert expansion_count(outcome) >= 1


def _parse_or_error(source: str) -> Segment | TemplateSyntaxError:
    try:
        return parse(source)
    except TemplateSyntaxError as error:
        return error
