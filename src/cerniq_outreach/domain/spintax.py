"""Spintax: `{a|b}` alternation groups and `{{variable}}` placeholders, parsed into a tree.

Syntax (error positions are 0-based character offsets into the source):

- `{a|b|c}` picks one alternative. Alternatives may be empty (`{|, }`) and may nest
  (`{a|{b|c} d}`).
- `{{name}}` is a variable. `name` is an ASCII identifier (letters, digits, `_`, not starting
  with a digit); whitespace around it is tolerated (`{{ name }}`).
- `{{` opens a variable only when a `}}` follows with no brace in between; otherwise the first
  `{` opens a group. So `{{b|c} d|e}` is a group whose first alternative starts with a group,
  and `{{{name}}|x}` is a group whose first alternative is a variable. The price: `{{a|b}}` is
  a variable with an invalid name, not a group wrapping a group (write `{a|b}` instead).
- There is no escape: `{`, `}` and `|` are always syntax, never text. A consequence used by
  the property tests: a source that parses has as many `{` as `}`.

Nesting is limited to `MAX_DEPTH` groups so that the recursive walks below can never hit
Python's recursion limit on a parsed tree.
"""

from __future__ import annotations

import itertools
import math
import re
from typing import TYPE_CHECKING

import msgspec

from cerniq_outreach.domain.errors import TemplateError

if TYPE_CHECKING:
    import random
    from collections.abc import Iterator, Mapping

MAX_DEPTH = 32

_VARIABLE = re.compile(r"\{\{([^{}]*)\}\}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SYNTAX_CHAR = re.compile(r"[{}|]")


class TemplateSyntaxError(TemplateError):
    """Spintax source is malformed; `position` is the 0-based offset of the culprit."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} at position {position}")
        self.position = position


class Text(msgspec.Struct, frozen=True, kw_only=True):
    """Literal text, copied to the output as is."""

    value: str


class Variable(msgspec.Struct, frozen=True, kw_only=True):
    """A `{{name}}` placeholder, replaced by the variable's value."""

    name: str


class Alternation(msgspec.Struct, frozen=True, kw_only=True):
    """A `{a|b|c}` group: exactly one of `options` is output."""

    options: tuple[Segment, ...]


class Segment(msgspec.Struct, frozen=True, kw_only=True):
    """A run of parts output one after the other: a whole template or one alternative."""

    parts: tuple[Node, ...] = ()


Node = Text | Variable | Alternation


class _OpenGroup:
    """A `{` not yet closed: where it opened and the alternatives read so far."""

    __slots__ = ("enclosing", "options", "start")

    def __init__(self, start: int, enclosing: list[Node]) -> None:
        self.start = start
        self.enclosing = enclosing
        self.options: list[Segment] = []


class _Builder:
    """Mutable parser state; never leaves `parse`.

    An explicit stack instead of recursive descent, so hostile input cannot blow Python's stack.
    """

    def __init__(self) -> None:
        self.stack: list[_OpenGroup] = []
        self.parts: list[Node] = []

    def punctuation(self, char: str, pos: int) -> None:
        """Apply a `{`, `|` or `}` (a `{` that is not part of a variable)."""
        if char == "{":
            if len(self.stack) >= MAX_DEPTH:
                raise TemplateSyntaxError(f"groups nested deeper than {MAX_DEPTH}", pos)
            self.stack.append(_OpenGroup(pos, self.parts))
            self.parts = []
        elif char == "|":
            if not self.stack:
                raise TemplateSyntaxError("'|' outside a {...|...} group", pos)
            self.stack[-1].options.append(Segment(parts=tuple(self.parts)))
            self.parts = []
        else:
            if not self.stack:
                raise TemplateSyntaxError("'}' without a matching '{'", pos)
            group = self.stack.pop()
            group.options.append(Segment(parts=tuple(self.parts)))
            self.parts = group.enclosing
            self.parts.append(Alternation(options=tuple(group.options)))

    def finish(self) -> Segment:
        """The root segment, once the whole source is read."""
        if self.stack:
            raise TemplateSyntaxError("'{' is never closed", self.stack[-1].start)
        return Segment(parts=tuple(self.parts))


def parse(source: str) -> Segment:
    """Parse spintax source into a tree that can be rendered any number of times.

    Args:
        source: The template text.

    Returns:
        The root segment.

    Raises:
        TemplateSyntaxError: On a `}` or `|` outside any group, a `{` never closed, an empty
            or invalid variable name, or nesting deeper than `MAX_DEPTH`.
    """
    builder = _Builder()
    pos = 0
    while pos < len(source):
        char = source[pos]
        if char == "{" and (variable := _VARIABLE.match(source, pos)) is not None:
            builder.parts.append(Variable(name=_variable_name(variable.group(1), pos)))
            pos = variable.end()
        elif char in "{|}":
            builder.punctuation(char, pos)
            pos += 1
        else:
            # Text runs are maximal, so a parsed tree never holds two adjacent Text nodes.
            syntax = _SYNTAX_CHAR.search(source, pos)
            end = len(source) if syntax is None else syntax.start()
            builder.parts.append(Text(value=source[pos:end]))
            pos = end
    return builder.finish()


def _variable_name(raw: str, pos: int) -> str:
    """Validate the inside of `{{...}}` found at `pos` and return the bare name."""
    name = raw.strip()
    if not name:
        raise TemplateSyntaxError("empty variable name in '{{}}'", pos)
    if _NAME.fullmatch(name) is None:
        raise TemplateSyntaxError(
            f"invalid variable name {name!r} (use letters, digits and '_',"
            " not starting with a digit)",
            pos,
        )
    return name


def is_variable_name(name: str) -> bool:
    """Whether `name` may be used as `{{name}}`."""
    return _NAME.fullmatch(name) is not None


def variable_names(tree: Segment) -> frozenset[str]:
    """Names of every variable anywhere in the tree, in every alternative."""
    names: set[str] = set()
    for part in tree.parts:
        match part:
            case Variable(name=name):
                names.add(name)
            case Alternation(options=options):
                for option in options:
                    names |= variable_names(option)
            case Text():
                pass
    return frozenset(names)


def expansion_count(tree: Segment) -> int:
    """How many ways the tree can be spun (distinct choices, which may give equal texts)."""
    return math.prod(_node_count(part) for part in tree.parts)


def _node_count(node: Node) -> int:
    if isinstance(node, Alternation):
        return sum(expansion_count(option) for option in node.options)
    return 1


def expansions(tree: Segment, values: Mapping[str, str] | None = None) -> Iterator[str]:
    """Every text the tree can produce, one per combination of choices, in source order.

    Meant for small templates (previews, property tests): the count grows multiplicatively.

    Args:
        tree: A parsed template.
        values: Variable values, inserted literally; a variable without a value is shown as
            its canonical placeholder `{{name}}` (so a preview can list variants unfilled).

    Yields:
        One text per combination of choices, without whitespace tidying.
    """
    given = values or {}
    choices = [tuple(_node_expansions(part, given)) for part in tree.parts]
    for combination in itertools.product(*choices):
        yield "".join(combination)


def _node_expansions(node: Node, values: Mapping[str, str]) -> Iterator[str]:
    match node:
        case Text(value=value):
            yield value
        case Variable(name=name):
            yield values.get(name, "{{" + name + "}}")
        case Alternation(options=options):
            for option in options:
                yield from expansions(option, values)


def spin(tree: Segment, values: Mapping[str, str], rng: random.Random) -> str:
    """Produce one text: at each group met, left to right, pick `rng.randrange(len(options))`.

    Only groups on the chosen path draw a number, so the same seed always yields the same
    text for the same tree. Values are inserted literally and never parsed as spintax.

    Args:
        tree: A parsed template.
        values: A value for every variable in the tree.
        rng: A seeded generator; the caller owns the seed (and so the determinism).

    Returns:
        The spun text, without whitespace tidying.

    Raises:
        TemplateError: A variable on the chosen path has no value.
    """
    out: list[str] = []
    _spin_into(tree, values, rng, out)
    return "".join(out)


def _spin_into(
    tree: Segment, values: Mapping[str, str], rng: random.Random, out: list[str]
) -> None:
    for part in tree.parts:
        match part:
            case Text(value=value):
                out.append(value)
            case Variable(name=name):
                if name not in values:
                    # Never fall back to the placeholder: `{{name}}` must not reach a customer.
                    raise TemplateError(f"no value for variable {name!r}")
                out.append(values[name])
            case Alternation(options=options):
                _spin_into(options[rng.randrange(len(options))], values, rng, out)
