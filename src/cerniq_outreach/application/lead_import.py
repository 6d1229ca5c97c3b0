"""Lead files: CSV or JSONL rows read into `LeadInput`s, with every bad row named.

A file is read whole before anything is enrolled, and it is never all-or-nothing: each good
row becomes a `LeadInput`, each bad one an `ImportIssue` giving its line, its column (CSV:
the 1-based column number and its header; JSONL: the key, or for broken JSON the column the
decoder stopped at) and what to fix. Line numbers are the file's own, blank lines included,
so an editor's "go to line" lands on the row.

Contacts come out in their canonical forms (E.164 phones, lowercased emails), names with
their whitespace collapsed, so a row read back from its own output reads the same. A phone
or email seen on an earlier line of the same file is an error naming that line: one row
per contact, and the second row is not silently merged into the first.

Reading is bounded: a row may take at most `MAX_ROW_CHARS` characters (an unclosed quote
that would swallow the rest of a CSV file stops there), and lines that are not UTF-8 (a
stream decoded with ``errors="surrogateescape"``) are reported one by one.
"""

from __future__ import annotations

import csv
import re
from collections import deque
from enum import StrEnum
from pathlib import PurePath
from typing import TYPE_CHECKING, Final, Protocol

import msgspec

from cerniq_outreach.application.enrolment import LeadInput
from cerniq_outreach.domain.consent import ConsentRecord
from cerniq_outreach.domain.contacts import InvalidContact, normalize_email, normalize_phone
from cerniq_outreach.domain.enums import LawfulBasis, OptOutScope
from cerniq_outreach.domain.events import Company

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from datetime import datetime

MAX_ROW_CHARS: Final = 16_384
"""The most characters one row (a CSV record, a JSONL line) may take; a real lead needs <1 KiB."""

DEFAULT_BASIS_SOURCE: Final = "import"
"""The consent records' `source` when a row has no `basis_source`."""

COLUMNS: Final = (
    "company_name",
    "fiscal_code",
    "county",
    "contact_name",
    "phone",
    "email",
    "lawful_basis_whatsapp",
    "lawful_basis_email",
    "basis_source",
    "tags",
)
"""The columns (CSV header) or keys (JSONL) a lead file may have; company_name is required."""

_BASIS_COLUMNS: Final = (
    ("lawful_basis_whatsapp", OptOutScope.WHATSAPP),
    ("lawful_basis_email", OptOutScope.EMAIL),
)
_BASIS_NAMES: Final = ", ".join(LawfulBasis)
_DELIMITERS: Final = (",", ";", "\t")
_EXCEL_SEPARATOR = re.compile(r"sep=(.)\s*")  # Excel's optional first line, e.g. "sep=;"
_TAG_SEPARATORS = re.compile(r"[;|,]")
# surrogateescape decodes each byte that is not UTF-8 to one of these code points.
_UNDECODABLE = re.compile("[\udc80-\udcff]")
_DECODE_OFFSET = re.compile(r"\(byte (\d+)\)")
_NOT_UTF8: Final = "the line is not UTF-8 text: save the file as UTF-8 (Excel: CSV UTF-8)"
_json = msgspec.json.Decoder()


class LeadFormat(StrEnum):
    """How a lead file is written."""

    CSV = "csv"
    JSONL = "jsonl"


_EXTENSIONS: Final = {
    ".csv": LeadFormat.CSV,
    ".tsv": LeadFormat.CSV,
    ".jsonl": LeadFormat.JSONL,
    ".ndjson": LeadFormat.JSONL,
}


class TextSource(Protocol):
    """What the reader needs of a text stream: `readline`, with a size limit."""

    def readline(self, size: int = -1, /) -> str:
        """Up to `size` characters of the next line, its line break included."""
        ...


class ImportIssue(msgspec.Struct, frozen=True, kw_only=True):
    """One problem in a lead file: where it is and what is wrong, for the person fixing it.

    `column` is 1-based (CSV: the cell; JSONL: the character where the JSON broke) and None
    when the problem has no one place; `field` is the column or key concerned, if any.
    """

    line: int
    column: int | None = None
    field: str | None = None
    message: str


class ImportedRow(msgspec.Struct, frozen=True, kw_only=True):
    """A good row: its line and the lead it reads as."""

    line: int
    lead: LeadInput


class LeadFile(msgspec.Struct, frozen=True, kw_only=True):
    """What a lead file holds: the good rows, the errors of the bad ones, and warnings.

    `read` counts the data rows read (blank lines and the header aside), good and bad; an
    error in the header stops reading, so the file's rows are then not counted.
    """

    format: LeadFormat
    read: int
    rows: tuple[ImportedRow, ...]
    errors: tuple[ImportIssue, ...]
    warnings: tuple[ImportIssue, ...]

    @property
    def invalid(self) -> int:
        """How many data rows were refused."""
        return self.read - len(self.rows)


def format_of(file_name: str) -> LeadFormat | None:
    """The format a file's extension names (`.csv`, `.tsv`, `.jsonl`, `.ndjson`), else None."""
    return _EXTENSIONS.get(PurePath(file_name).suffix.lower())


def read_leads(
    stream: TextSource,
    *,
    name: str,
    imported_at: datetime,
    lead_format: LeadFormat | None = None,
) -> LeadFile:
    """Read a lead file into its good rows, errors and warnings.

    Args:
        stream: The file as text, UTF-8 (a byte-order mark is dropped); open it with
            ``newline=""`` so line breaks inside quoted CSV cells are kept as written.
        name: The file's name, quoted in the leads' source and consent evidence
            (``leads.csv line 12``).
        imported_at: When the consent records are collected: the time of the import.
        lead_format: CSV or JSONL; None decides by the content (JSONL when the first
            non-blank line starts with ``{``).

    Raises:
        ValueError: `imported_at` has no time zone.
    """
    if imported_at.utcoffset() is None:
        raise ValueError("imported_at needs a time zone")
    lines = _Lines(stream)
    rows = _Rows(name, imported_at)
    chosen = lead_format or LeadFormat.CSV
    try:
        first = lines.peek()
        if first is None:
            rows.warnings.append(ImportIssue(line=1, message="the file is empty: no leads"))
        else:
            if lead_format is None and first.lstrip().startswith("{"):
                chosen = LeadFormat.JSONL
            if chosen is LeadFormat.JSONL:
                _read_jsonl(lines, rows)
            else:
                _read_csv(lines, rows, first)
    except _Unreadable:
        # A strict decoder cannot resume after a bad byte: the rest of the file is lost.
        line = lines.number + 1
        rows.errors.append(ImportIssue(line=line, message=f"{_NOT_UTF8}; stopped reading here"))
    return LeadFile(
        format=chosen,
        read=rows.read,
        rows=tuple(rows.good),
        errors=tuple(rows.errors),
        warnings=tuple(rows.warnings),
    )


# --- physical lines -------------------------------------------------------------------------


class _RowProblem(Exception):
    """The record being read cannot be used; the reader goes on with the next line."""


class _Unreadable(Exception):
    """The stream cannot be decoded any further."""


class _Lines:
    """A stream's physical lines, numbered, with a cap on how much one record may take.

    A class rather than a generator: `csv.reader` pulls from it, and a problem raised here
    must leave it usable for the next record (a generator that raises is finished).
    """

    def __init__(self, stream: TextSource) -> None:
        self._stream = stream
        self._ahead: deque[str] = deque()
        self._started = False
        self._record_chars = 0
        self.number = 0
        """Physical lines handed out so far."""

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = self._ahead.popleft() if self._ahead else self._read()
        if not line:
            raise StopIteration
        self.number += 1
        self._record_chars += len(line)
        if self._record_chars > MAX_ROW_CHARS:
            raise _RowProblem(
                f"the row is longer than {MAX_ROW_CHARS} characters (a quote never closed?)"
            )
        if _UNDECODABLE.search(line):
            raise _RowProblem(_NOT_UTF8)
        return line

    def start_record(self) -> int:
        """Start counting a new record's characters; return the line it starts on."""
        self._record_chars = 0
        return self.number + 1

    def peek(self) -> str | None:
        """The first line that is not blank, read ahead but not handed out; None: no such line."""
        while True:
            line = self._read()
            if not line:
                return None
            self._ahead.append(line)
            if line.strip():
                return line

    def _read(self) -> str:
        try:
            line = self._stream.readline(MAX_ROW_CHARS + 1)
        except UnicodeDecodeError as exc:
            raise _Unreadable from exc
        if not self._started:
            self._started = True
            line = line.removeprefix("\ufeff")
        if len(line) > MAX_ROW_CHARS and not line.endswith(("\n", "\r")):
            # Skip the rest of this physical line unread into memory: the next read must
            # start on the next line, and the caller sees a line over the cap.
            rest = line
            while rest and not rest.endswith(("\n", "\r")):
                rest = self._stream.readline(MAX_ROW_CHARS)
        return line


# --- rows into leads ------------------------------------------------------------------------


class _Rows:
    """Turns rows into leads and collects the file's good rows, errors and warnings."""

    def __init__(self, name: str, imported_at: datetime) -> None:
        self.name = name
        self.imported_at = imported_at
        self.read = 0
        self.good: list[ImportedRow] = []
        self.errors: list[ImportIssue] = []
        self.warnings: list[ImportIssue] = []
        self._seen: dict[tuple[str, str], int] = {}

    def add(
        self,
        line: int,
        fields: Mapping[str, str],
        tags: tuple[str, ...],
        column_of: Callable[[str], int | None],
    ) -> None:
        """Read one row's fields (text, stripped or not) as a lead, or record its errors."""
        problems: list[ImportIssue] = []

        def bad(field: str, message: str) -> None:
            problems.append(
                ImportIssue(line=line, column=column_of(field), field=field, message=message)
            )

        name = _words(fields.get("company_name", ""))
        if not name:
            bad("company_name", "company_name is empty: every lead needs its company's name")
        phone = self._contact(line, "phone", fields, normalize_phone, bad)
        email = self._contact(line, "email", fields, normalize_email, bad)
        if not fields.get("phone", "").strip() and not fields.get("email", "").strip():
            where = "email" if column_of("phone") is None and column_of("email") else "phone"
            bad(where, "no phone and no email: a lead needs at least one of them")
        source = _words(fields.get("basis_source", "")) or DEFAULT_BASIS_SOURCE
        consents: list[ConsentRecord] = []
        for field, family in _BASIS_COLUMNS:
            written = fields.get(field, "").strip()
            if not written:
                continue
            basis = _basis(written)
            if basis is None:
                bad(field, f"{field} {written!r} is not a lawful basis: use one of {_BASIS_NAMES}")
                continue
            consents.append(
                ConsentRecord(
                    channel_family=family,
                    basis=basis,
                    evidence=f"{self.name} line {line}",
                    source=source,
                    collected_at=self.imported_at,
                )
            )
        if problems:
            self.errors.extend(problems)
            return
        company = Company(
            name=name,
            fiscal_code="".join(fields.get("fiscal_code", "").split()).upper() or None,
            county=_words(fields.get("county", "")) or None,
            phone=phone,
            email=email,
            contact_name=_words(fields.get("contact_name", "")) or None,
        )
        lead = LeadInput(
            company=company,
            consents=tuple(consents),
            tags=tags,
            source=f"{self.name} line {line}",
        )
        self.good.append(ImportedRow(line=line, lead=lead))

    def _contact(
        self,
        line: int,
        field: str,
        fields: Mapping[str, str],
        normalize: Callable[[str], str],
        bad: Callable[[str, str], None],
    ) -> str | None:
        """The row's phone or email in canonical form; None when absent or refused."""
        written = fields.get(field, "").strip()
        if not written:
            return None
        try:
            value = normalize(written)
        except InvalidContact as exc:
            bad(field, str(exc))
            return None
        first = self._seen.setdefault((field, value), line)
        if first != line:
            bad(field, f"{field} {value} is on line {first} already: one row per contact")
        return value


def _words(text: str) -> str:
    """`text` with its whitespace collapsed: names come out of spreadsheets ragged."""
    return " ".join(text.split())


def _basis(written: str) -> LawfulBasis | None:
    """The lawful basis `written` names, in any case, with spaces or dashes for underscores."""
    key = "_".join(written.replace("-", " ").split()).upper()
    return LawfulBasis(key) if key in LawfulBasis.__members__ else None


def _key(name: str) -> str:
    """A header or key in the form of `COLUMNS`: "Company Name" is company_name."""
    return "_".join(name.replace("-", " ").split()).lower()


def _split_tags(cell: str) -> tuple[str, ...]:
    """Tags written in one cell, separated by ``;``, ``|`` or ``,``: in order, once each."""
    found = (_words(part) for part in _TAG_SEPARATORS.split(cell))
    return tuple(dict.fromkeys(tag for tag in found if tag))


# --- CSV ------------------------------------------------------------------------------------


def _read_csv(lines: _Lines, rows: _Rows, first: str) -> None:
    """Read the header, then every record; `first` is the first non-blank line."""
    separator = _EXCEL_SEPARATOR.fullmatch(first.strip())
    if separator:
        while next(lines) != first:
            pass  # blank lines before Excel's "sep=" line
        delimiter = separator.group(1)
    else:
        # The header's names hold no delimiter, so the one it uses most is the file's.
        delimiter = max(_DELIMITERS, key=first.count)
    # strict: a stray quote is an error to report, not a guess at what was meant.
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    header: _Header | None = None
    while True:
        line = lines.start_record()
        try:
            cells = next(reader)
        except StopIteration:
            return
        except (_RowProblem, csv.Error) as exc:
            rows.errors.append(ImportIssue(line=line, message=_csv_problem(exc)))
            if header is None:
                return
            rows.read += 1
            continue
        if not any(cell.strip() for cell in cells):
            continue
        if header is None:
            header = _header(line, cells, rows)
            if header is None:
                return
            continue
        rows.read += 1
        _csv_record(line, cells, header, rows)


def _csv_problem(exc: Exception) -> str:
    """What a record the csv module could not read means for the person fixing it."""
    if isinstance(exc, _RowProblem):
        return str(exc)
    if str(exc) == "unexpected end of data":
        return "a quote opened in this row is never closed: the file ends inside it"
    return f"cannot read the row: {exc}"


class _Header(msgspec.Struct, frozen=True):
    """The known columns' 0-based indexes, and how many cells the header names."""

    columns: dict[str, int]
    width: int

    def column_of(self, field: str) -> int | None:
        """The 1-based column of `field`; None when the file has no such column."""
        index = self.columns.get(field)
        return None if index is None else index + 1


def _header(line: int, cells: list[str], rows: _Rows) -> _Header | None:
    """The header's columns; None (with the error recorded) when it cannot be used."""
    positions: dict[str, int] = {}
    unknown: list[ImportIssue] = []  # reported only for a header that can be used
    for index, cell in enumerate(cells):
        key = _key(cell)
        if not key:
            continue  # an unnamed column (a trailing delimiter): its cells are not read
        if key in positions:
            rows.errors.append(
                ImportIssue(
                    line=line,
                    column=index + 1,
                    field=key,
                    message=f"column {key} appears twice (columns {positions[key] + 1} and "
                    f"{index + 1}): which one holds the values?",
                )
            )
            return None
        positions[key] = index
        if key not in COLUMNS:
            unknown.append(
                ImportIssue(
                    line=line,
                    column=index + 1,
                    field=key,
                    message=f"unknown column {cell.strip()!r} ignored",
                )
            )
    missing = None
    if "company_name" not in positions:
        missing = "no company_name column"
    elif "phone" not in positions and "email" not in positions:
        missing = "no phone or email column: a lead needs one of them"
    if missing:
        found = ", ".join(positions) or "nothing"
        rows.errors.append(ImportIssue(line=line, message=f"{missing} (the header has: {found})"))
        return None
    rows.warnings.extend(unknown)
    known = {key: index for key, index in positions.items() if key in COLUMNS}
    return _Header(known, max(positions.values()) + 1)


def _csv_record(line: int, cells: list[str], header: _Header, rows: _Rows) -> None:
    """One CSV record (not blank) as a lead, or its errors."""
    extra = next((i for i in range(header.width, len(cells)) if cells[i].strip()), None)
    if extra is not None:
        # A value past the header's last column: a value with an unquoted delimiter shifted
        # the row, and every cell after it would land in the wrong column.
        rows.errors.append(
            ImportIssue(
                line=line,
                column=extra + 1,
                message=f"the row has a value in column {extra + 1}, past the header's "
                f"{header.width} columns: a value holding the delimiter needs quotes",
            )
        )
        return
    fields = {key: cells[i] if i < len(cells) else "" for key, i in header.columns.items()}
    rows.add(line, fields, _split_tags(fields.get("tags", "")), header.column_of)


# --- JSONL ----------------------------------------------------------------------------------


def _read_jsonl(lines: _Lines, rows: _Rows) -> None:
    """Read one JSON object a line; blank lines are skipped."""
    unknown: set[str] = set()
    while True:
        line = lines.start_record()
        try:
            text = next(lines)
        except StopIteration:
            return
        except _RowProblem as exc:
            rows.read += 1
            rows.errors.append(ImportIssue(line=line, message=str(exc)))
            continue
        if not text.strip():
            continue
        rows.read += 1
        try:
            value = _json.decode(text)
        except msgspec.DecodeError as exc:
            rows.errors.append(_syntax_error(line, text, str(exc)))
            continue
        if not isinstance(value, dict):
            rows.errors.append(
                ImportIssue(line=line, message=f"expected a JSON object, not {_kind(value)}")
            )
            continue
        _json_record(line, value, rows, unknown)


def _json_record(line: int, value: dict[str, object], rows: _Rows, unknown: set[str]) -> None:
    """One JSON object as a lead, or its errors; unknown keys are warned about once each."""
    fields: dict[str, str] = {}
    tags: tuple[str, ...] = ()
    problems: list[ImportIssue] = []
    for raw_key, item in value.items():
        key = _key(raw_key)
        if key not in COLUMNS:
            if key not in unknown:
                unknown.add(key)
                rows.warnings.append(
                    ImportIssue(
                        line=line,
                        field=raw_key,
                        message=f"unknown key {raw_key!r} ignored (reported once, first here)",
                    )
                )
            continue
        if item is None:
            continue
        if key == "tags" and isinstance(item, list) and all(isinstance(t, str) for t in item):
            tags = tuple(dict.fromkeys(tag for tag in map(_words, item) if tag))
        elif isinstance(item, str):
            fields[key] = item
            if key == "tags":
                tags = _split_tags(item)
        elif key in {"phone", "fiscal_code"} and type(item) is int:
            fields[key] = str(item)  # spreadsheets export digit strings as numbers
        else:
            wanted = "a string or a list of strings" if key == "tags" else "a string"
            problems.append(
                ImportIssue(
                    line=line, field=key, message=f"{key} must be {wanted}, not {_kind(item)}"
                )
            )
    if problems:
        rows.errors.extend(problems)
        return
    rows.add(line, fields, tags, lambda _field: None)


def _syntax_error(line: int, text: str, reason: str) -> ImportIssue:
    """Broken JSON, with the 1-based character column where the decoder stopped."""
    found = _DECODE_OFFSET.search(reason)
    content = text.rstrip("\r\n")
    if found:
        # msgspec counts bytes of the UTF-8 text; an editor counts characters.
        offset = int(found.group(1))
        column = len(content.encode()[:offset].decode(errors="ignore")) + 1
    else:
        column = len(content) + 1  # truncated input: it broke at the end of the line
    detail = _DECODE_OFFSET.sub("", reason.removeprefix("JSON is malformed: ")).strip()
    if detail == "Input data was truncated":
        detail = "the line ends inside the JSON value"
    return ImportIssue(line=line, column=column, message=f"invalid JSON: {detail}")


def _kind(value: object) -> str:
    """How a JSON value is called in an error message."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return "a number"
    return "a string" if isinstance(value, str) else "null"
