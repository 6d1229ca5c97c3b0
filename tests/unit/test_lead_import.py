"""Reading lead files: every good row becomes a lead, every bad one an error that says where."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cerniq_outreach.application.enrolment import LeadInput
from cerniq_outreach.application.lead_import import (
    COLUMNS,
    MAX_ROW_CHARS,
    ImportIssue,
    LeadFile,
    LeadFormat,
    format_of,
    read_leads,
)
from cerniq_outreach.domain.consent import ConsentRecord
from cerniq_outreach.domain.contacts import normalize_email, normalize_phone
from cerniq_outreach.domain.enums import LawfulBasis, OptOutScope
from cerniq_outreach.domain.events import Company

AT = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)


def read(text: str, lead_format: LeadFormat | None = None, name: str = "leads.csv") -> LeadFile:
    return read_leads(
        io.StringIO(text, newline=""), name=name, imported_at=AT, lead_format=lead_format
    )


def leads(text: str, lead_format: LeadFormat | None = None) -> list[LeadInput]:
    parsed = read(text, lead_format)
    assert parsed.errors == (), parsed.errors
    return [row.lead for row in parsed.rows]


def where(parsed: LeadFile) -> list[tuple[int, int | None, str | None]]:
    return [(e.line, e.column, e.field) for e in parsed.errors]


# --- CSV ------------------------------------------------------------------------------------


def test_every_column_is_read_into_the_lead():
    """A full row gives the company, one consent record per basis, the tags and the source."""
    text = (
        "company_name,fiscal_code,county,contact_name,phone,email,lawful_basis_whatsapp,"
        "lawful_basis_email,basis_source,tags\n"
        "  Agro   Verde SRL ,ro 123 456,Cluj,Ion  Pop,0722 123 456,Ion@AgroVerde.RO,"
        "legitimate_interest,Existing Customer,Târg Agraria 2025,cereale;bio\n"
    )
    [lead] = leads(text)
    assert lead.company == Company(
        name="Agro Verde SRL",
        fiscal_code="RO123456",
        county="Cluj",
        phone="+40722123456",
        email="ion@agroverde.ro",
        contact_name="Ion Pop",
    )
    assert lead.consents == (
        ConsentRecord(
            channel_family=OptOutScope.WHATSAPP,
            basis=LawfulBasis.LEGITIMATE_INTEREST,
            evidence="leads.csv line 2",
            source="Târg Agraria 2025",
            collected_at=AT,
        ),
        ConsentRecord(
            channel_family=OptOutScope.EMAIL,
            basis=LawfulBasis.EXISTING_CUSTOMER,
            evidence="leads.csv line 2",
            source="Târg Agraria 2025",
            collected_at=AT,
        ),
    )
    assert lead.tags == ("cereale", "bio")
    assert lead.source == "leads.csv line 2"


def test_optional_columns_may_be_absent_or_empty():
    """Only company_name and a phone or an email are needed; no basis means no record."""
    [lead] = leads("company_name,email,county\nAgro,office@agro.ro,\n")
    assert lead == LeadInput(
        company=Company(name="Agro", email="office@agro.ro"), source="leads.csv line 2"
    )


def test_without_basis_source_the_records_say_import():
    """A basis with no basis_source is recorded with the source `import`."""
    [lead] = leads("company_name,phone,lawful_basis_whatsapp\nAgro,0722123456,consent\n")
    [record] = lead.consents
    assert (record.source, record.basis) == ("import", LawfulBasis.CONSENT)


@pytest.mark.parametrize(
    "written",
    [
        "0722 123 456",
        "+40 722 123 456",
        "0040722123456",
        "722123456",
        "40722123456",
        "(0722) 123.456",
        "+40 (0) 722-123-456",
        "+40722123456",
    ],
)
def test_a_phone_in_any_common_form_is_stored_in_e164(written):
    """Romanian and international forms, and a spreadsheet's lost 0, all give E.164."""
    [lead] = leads(f'company_name,phone\nAgro,"{written}"\n')
    assert lead.company.phone == "+40722123456"


def test_a_foreign_number_keeps_its_country_code():
    """A number with another country code is stored with it."""
    [lead] = leads("company_name,phone\nAgro,+49 30 1234567\n")
    assert lead.company.phone == "+49301234567"


@pytest.mark.parametrize(
    "text",
    [
        "company_name;phone;tags\nAgro, Verde SRL;0722123456;a,b\n",
        "company_name\tphone\ttags\nAgro, Verde SRL\t0722123456\ta,b\n",
        'company_name,phone,tags\n"Agro, Verde SRL",0722123456,"a,b"\n',
        'sep=;\ncompany_name;phone;tags\nAgro, Verde SRL;0722123456;"a,b"\n',
        '\ufeffcompany_name,phone,tags\n"Agro, Verde SRL",0722123456,"a,b"\n',
        'Company Name,PHONE,Tags\r\n"Agro, Verde SRL",0722123456,"a,b"\r\n',
    ],
    ids=["semicolon", "tab", "comma", "excel-sep-line", "bom", "header-case-crlf"],
)
def test_the_delimiter_is_found_and_a_bom_dropped(text):
    """`,` `;` and tab are recognised from the header; a BOM or Excel's sep= line is no value."""
    [lead] = leads(text)
    assert (lead.company.name, lead.company.phone, lead.tags) == (
        "Agro, Verde SRL",
        "+40722123456",
        ("a", "b"),
    )


@pytest.mark.parametrize(
    ("cell", "tags"),
    [
        ("cereale; bio", ("cereale", "bio")),
        ("cereale|bio|", ("cereale", "bio")),
        ("cereale, bio ,cereale", ("cereale", "bio")),
        ("  vin  roșu ", ("vin roșu",)),
        ("", ()),
    ],
)
def test_tags_in_a_cell_are_split_on_semicolon_bar_or_comma(cell, tags):
    """Tags come out trimmed, in order, each once."""
    [lead] = leads(f'company_name,phone,tags\nAgro,0722123456,"{cell}"\n')
    assert lead.tags == tags


def test_a_bad_row_is_named_by_line_column_and_header():
    """Errors give the file's line, the 1-based column and its header; good rows still count."""
    text = (
        "company_name,phone,email,lawful_basis_email\n"
        "Agro,0722123456,,CONSENT\n"
        "\n"
        ",0744000111,,\n"
        "Ferma,07x4,,\n"
        "Cereale,,office@,\n"
        "Vin,0745000222,,maybe\n"
        "Nimic,,,\n"
    )
    parsed = read(text)
    assert [row.line for row in parsed.rows] == [2]
    assert where(parsed) == [
        (4, 1, "company_name"),
        (5, 2, "phone"),
        (6, 3, "email"),
        (7, 4, "lawful_basis_email"),
        (8, 2, "phone"),
    ]
    assert (parsed.read, parsed.invalid) == (6, 5)
    messages = [e.message for e in parsed.errors]
    assert "company_name is empty" in messages[0]
    assert "'07x4' contains letters" in messages[1]
    assert "'office@'" in messages[2]
    assert "'maybe' is not a lawful basis" in messages[3]
    assert "CONSENT, EXISTING_CUSTOMER, LEGITIMATE_INTEREST" in messages[3]
    assert "no phone and no email" in messages[4]


def test_every_problem_of_a_row_is_reported():
    """A row with two bad cells gets two errors, one per column."""
    parsed = read("company_name,phone,email\n,12,\n")
    assert where(parsed) == [(2, 1, "company_name"), (2, 2, "phone")]
    assert parsed.invalid == 1


def test_without_a_phone_column_the_missing_contact_points_at_email():
    """The 'needs a phone or an email' error names a column the file has."""
    parsed = read("company_name,email\nAgro,\n")
    assert where(parsed) == [(2, 2, "email")]


def test_a_contact_twice_in_a_file_is_an_error_naming_the_first_line():
    """The same phone (in another form) or email (in another case) again is refused."""
    text = (
        "company_name,phone,email\n"
        "Agro,0722123456,ion@agro.ro\n"
        "Agro 2,+40 722 123 456,\n"
        "Agro 3,,ION@AGRO.RO\n"
        "Alta,0744000111,alta@agro.ro\n"
    )
    parsed = read(text)
    assert [row.line for row in parsed.rows] == [2, 5]
    assert where(parsed) == [(3, 2, "phone"), (4, 3, "email")]
    assert "+40722123456 is on line 2 already" in parsed.errors[0].message
    assert "ion@agro.ro is on line 2 already" in parsed.errors[1].message


def test_unknown_columns_are_one_warning_each_not_an_error():
    """An extra column is reported once, at the header, and its values are ignored."""
    parsed = read("company_name,phone,notes\nAgro,0722123456,x\nFerma,0744000111,y\n")
    assert parsed.errors == ()
    assert len(parsed.rows) == 2
    assert parsed.warnings == (
        ImportIssue(line=1, column=3, field="notes", message="unknown column 'notes' ignored"),
    )


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("phone,email", "no company_name column (the header has: phone, email)"),
        ("name,phone", "no company_name column (the header has: name, phone)"),
        ("company_name,county", "no phone or email column"),
        ("company_name,phone,Phone", "column phone appears twice (columns 2 and 3)"),
    ],
)
def test_an_unusable_header_is_one_error_and_no_rows(header, message):
    """Without company_name, without phone and email, or with a column twice: nothing is read."""
    parsed = read(f"{header}\nAgro,0722123456,x\n")
    [error] = parsed.errors
    assert (error.line, message in error.message) == (1, True)
    assert (parsed.rows, parsed.read, parsed.warnings) == ((), 0, ())


def test_a_value_past_the_last_column_is_a_shifted_row():
    """An unquoted delimiter inside a value shifts the row: refused, not guessed at."""
    parsed = read("company_name,phone,\nAgro, SRL,0722123456\nFerma,0744000111,\n")
    assert [row.line for row in parsed.rows] == [3]
    assert where(parsed) == [(2, 3, None)]
    assert "needs quotes" in parsed.errors[0].message


def test_line_numbers_stay_the_files_own_after_a_cell_spanning_lines():
    """A quoted cell with line breaks moves the next row's line number on by as many lines."""
    parsed = read('company_name,phone\n"Agro\nVerde",0722123456\nFerma,07x\n')
    assert [(row.line, row.lead.company.name) for row in parsed.rows] == [(2, "Agro Verde")]
    assert where(parsed) == [(4, 2, "phone")]


def test_a_quote_never_closed_is_reported_at_its_row():
    """The rows before an unclosed quote are kept; the error names the line it opened on."""
    parsed = read('company_name,phone\nAgro,0722123456\nFerma,"0744\nVin,0745000222\n')
    assert [row.line for row in parsed.rows] == [2]
    assert [(e.line, e.column) for e in parsed.errors] == [(3, None)]
    assert "never closed" in parsed.errors[0].message


def test_a_row_over_the_size_cap_is_refused_and_reading_goes_on():
    """A huge row is an error at its line; the next row is read as usual."""
    huge = "A" * (MAX_ROW_CHARS + 10)
    parsed = read(f"company_name,phone\n{huge},0722123456\nFerma,0744000111\n")
    assert [row.line for row in parsed.rows] == [3]
    assert [(e.line, e.column) for e in parsed.errors] == [(2, None)]
    assert f"longer than {MAX_ROW_CHARS} characters" in parsed.errors[0].message


def test_a_line_that_is_not_utf8_is_one_error():
    """Bytes that are not UTF-8 (decoded with surrogateescape) refuse their line only."""
    raw = "company_name,phone\nFerma Bănățeană,0722123456\n".encode() + (
        b"Ferma B\xe3n\xe3\xfeean\xe3,0744000111\nVin,0745000222\n"
    )
    stream = io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8", errors="surrogateescape")
    parsed = read_leads(stream, name="leads.csv", imported_at=AT)
    assert [row.line for row in parsed.rows] == [2, 4]
    assert [e.line for e in parsed.errors] == [3]
    assert "not UTF-8" in parsed.errors[0].message


def test_a_strict_decoder_error_stops_reading_with_an_error():
    """A stream that cannot decode further ends the file with an error, the rows before kept."""
    raw = b"company_name,phone\nVin,0745000222\nFerma B\xe3n\xe3,0744000111\n"
    stream = io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8")
    parsed = read_leads(stream, name="leads.csv", imported_at=AT)
    [error] = parsed.errors
    assert "stopped reading" in error.message
    assert len(parsed.rows) <= 1


def test_an_empty_file_is_a_warning_not_an_error():
    """A file with nothing in it (or a header only) has no rows and no errors."""
    empty = read("\n\n")
    assert (empty.rows, empty.errors, empty.read) == ((), (), 0)
    assert [w.message for w in empty.warnings] == ["the file is empty: no leads"]
    assert read("company_name,phone\n") == LeadFile(
        format=LeadFormat.CSV, read=0, rows=(), errors=(), warnings=()
    )


def test_the_import_time_must_carry_a_zone():
    """Consent records need an aware time; a naive one is a programming error."""
    with pytest.raises(ValueError, match="time zone"):
        read_leads(io.StringIO(""), name="x.csv", imported_at=datetime(2026, 3, 2))  # noqa: DTZ001


# --- JSONL ----------------------------------------------------------------------------------

JSONL_FULL = (
    '{"company_name": "Agro", "fiscal_code": "RO1", "county": "Cluj", "contact_name": "Ion",'
    ' "phone": "0722 123 456", "email": "Ion@Agro.ro", "lawful_basis_whatsapp": "CONSENT",'
    ' "lawful_basis_email": "consent", "basis_source": "web", "tags": ["a", " b ", "a"]}\n'
)


def test_jsonl_rows_read_like_csv_rows():
    """JSONL keys are the CSV columns; tags may be a list or a string."""
    [first, second] = leads(
        JSONL_FULL + '{"company_name": "Ferma", "email": "f@ferma.ro", "tags": "x|y"}\n',
        LeadFormat.JSONL,
    )
    assert first.company == Company(
        name="Agro",
        fiscal_code="RO1",
        county="Cluj",
        phone="+40722123456",
        email="ion@agro.ro",
        contact_name="Ion",
    )
    assert [(c.channel_family, c.basis, c.source) for c in first.consents] == [
        (OptOutScope.WHATSAPP, LawfulBasis.CONSENT, "web"),
        (OptOutScope.EMAIL, LawfulBasis.CONSENT, "web"),
    ]
    assert (first.tags, second.tags) == (("a", "b"), ("x", "y"))
    assert second.source == "leads.csv line 2"


def test_jsonl_is_recognised_by_its_content():
    """Without a format, a first line starting with `{` is JSONL."""
    parsed = read("\n" + JSONL_FULL)
    assert parsed.format is LeadFormat.JSONL
    assert [row.line for row in parsed.rows] == [2]


def test_jsonl_accepts_numbers_for_digit_fields_and_null_for_absent():
    """A phone or fiscal code exported as a number is read; null is an absent value."""
    [lead] = leads(
        '{"company_name": "Agro", "phone": 40722123456, "fiscal_code": 123, "email": null}\n',
        LeadFormat.JSONL,
    )
    assert (lead.company.phone, lead.company.fiscal_code, lead.company.email) == (
        "+40722123456",
        "123",
        None,
    )


def test_a_jsonl_syntax_error_gives_the_character_column():
    """Broken JSON is named by line and by the column, in characters, where it broke."""
    text = (
        '{"company_name": "Agro", "phone": "0722123456"}\n'
        "\n"
        '{"company_name": "Ferma Bănățeană", x}\n'
        '{"company_name": "Vin",\n'
    )
    parsed = read(text, LeadFormat.JSONL)
    assert [row.line for row in parsed.rows] == [1]
    assert [(e.line, e.column) for e in parsed.errors] == [(3, 37), (4, 24)]
    assert text.splitlines()[2][37 - 1] == "x"  # after 3 two-byte letters: not byte 39
    assert parsed.errors[0].message == "invalid JSON: object keys must be strings"
    assert parsed.errors[1].message == "invalid JSON: the line ends inside the JSON value"


def test_jsonl_values_of_the_wrong_type_are_named_by_key():
    """A line that is not an object, or a key of the wrong type, is an error naming the key."""
    text = (
        "[1, 2]\n"
        '{"company_name": "Agro", "phone": ["0722123456"]}\n'
        '{"company_name": "Ferma", "email": "f@f.ro", "tags": 3}\n'
        '{"company_name": true, "email": "v@v.ro"}\n'
    )
    parsed = read(text, LeadFormat.JSONL)
    assert parsed.rows == ()
    assert where(parsed) == [
        (1, None, None),
        (2, None, "phone"),
        (3, None, "tags"),
        (4, None, "company_name"),
    ]
    assert "not a list" in parsed.errors[0].message
    assert "phone must be a string, not a list" in parsed.errors[1].message
    assert "tags must be a string or a list of strings" in parsed.errors[2].message


def test_jsonl_errors_and_duplicates_name_the_key():
    """Bad values, missing contacts and duplicates in JSONL name their key, with no column."""
    text = (
        '{"company_name": "Agro", "phone": "0722123456"}\n'
        '{"company_name": "Ferma", "phone": "+40722123456"}\n'
        '{"company_name": "Vin", "email": "nope"}\n'
        '{"company_name": "Nimic"}\n'
    )
    parsed = read(text, LeadFormat.JSONL)
    assert where(parsed) == [(2, None, "phone"), (3, None, "email"), (4, None, "phone")]
    assert "on line 1 already" in parsed.errors[0].message


def test_unknown_jsonl_keys_are_warned_about_once():
    """An unknown key is one warning, at the first line that has it."""
    text = (
        '{"company_name": "Agro", "phone": "0722123456", "note": 1}\n'
        '{"company_name": "Ferma", "phone": "0744000111", "note": 2}\n'
    )
    parsed = read(text, LeadFormat.JSONL)
    assert len(parsed.rows) == 2
    assert [(w.line, w.field) for w in parsed.warnings] == [(1, "note")]


@pytest.mark.parametrize(
    ("name", "found"),
    [
        ("leads.csv", LeadFormat.CSV),
        ("LEADS.TSV", LeadFormat.CSV),
        ("a/b/leads.jsonl", LeadFormat.JSONL),
        ("leads.ndjson", LeadFormat.JSONL),
        ("leads.txt", None),
        ("-", None),
    ],
)
def test_the_format_follows_the_extension(name, found):
    """.csv and .tsv are CSV, .jsonl and .ndjson JSONL; anything else is decided by content."""
    assert format_of(name) is found


# --- round trip -----------------------------------------------------------------------------

_separators = st.sampled_from(["", " ", "-", ".", "/"])
# Mostly plausible values, some empty, some junk: the property is about the rows accepted.
phone_cells = st.one_of(
    st.just(""),
    st.text(max_size=20),
    st.builds(
        lambda prefix, digits, sep: prefix + sep.join([digits[:3], digits[3:6], digits[6:]]),
        st.sampled_from(["0", "+40 ", "0040", "", "+49 ", "+"]),
        st.from_regex(r"[1-9][0-9]{6,11}", fullmatch=True),
        _separators,
    ),
)
email_cells = st.one_of(
    st.just(""),
    st.text(max_size=20),
    st.builds(
        lambda local, domain, pad: f"{pad}{local}@{domain}{pad}",
        st.from_regex(r"[A-Za-z0-9._+-]{1,10}", fullmatch=True),
        st.from_regex(r"[A-Za-z0-9-]{1,8}\.(ro|COM|eu)", fullmatch=True),
        st.sampled_from(["", " "]),
    ),
)
basis_cells = st.sampled_from(
    ["", "", "consent", "Existing Customer", " LEGITIMATE-INTEREST", "legitimate interest", "?"]
)
text_cells = st.text(max_size=30)
rows = st.fixed_dictionaries(
    {
        "company_name": text_cells,
        "fiscal_code": text_cells,
        "county": text_cells,
        "contact_name": text_cells,
        "phone": phone_cells,
        "email": email_cells,
        "lawful_basis_whatsapp": basis_cells,
        "lawful_basis_email": basis_cells,
        "basis_source": text_cells,
        "tags": text_cells,
    }
)


def as_csv(records: list[dict[str, str]]) -> str:
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return out.getvalue()


def written_back(lead: LeadInput) -> dict[str, str]:
    """An accepted lead as the row a person would write for it."""
    company = lead.company
    bases = {c.channel_family: c.basis.value for c in lead.consents}
    return {
        "company_name": company.name,
        "fiscal_code": company.fiscal_code or "",
        "county": company.county or "",
        "contact_name": company.contact_name or "",
        "phone": company.phone or "",
        "email": company.email or "",
        "lawful_basis_whatsapp": bases.get(OptOutScope.WHATSAPP, ""),
        "lawful_basis_email": bases.get(OptOutScope.EMAIL, ""),
        "basis_source": lead.consents[0].source if lead.consents else "",
        "tags": "|".join(lead.tags),
    }


@given(st.lists(rows, max_size=4))
def test_an_accepted_row_is_in_normal_form_and_reads_back_the_same(records):
    """Accepted values are their own normal forms: written back, they read as the same lead."""
    parsed = read(as_csv(records))
    assert len(parsed.rows) + parsed.invalid == parsed.read
    for row in parsed.rows:
        company = row.lead.company
        assert company.phone or company.email
        if company.phone:
            assert normalize_phone(company.phone) == company.phone
        if company.email:
            assert normalize_email(company.email) == company.email
        assert company.name == " ".join(company.name.split()) != ""
        again = read(as_csv([written_back(row.lead)]))
        assert again.errors == ()
        [reread] = again.rows
        assert reread.lead.company == company
        assert reread.lead.tags == row.lead.tags
        assert [(c.channel_family, c.basis, c.source) for c in reread.lead.consents] == [
            (c.channel_family, c.basis, c.source) for c in row.lead.consents
        ]
