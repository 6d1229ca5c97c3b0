r"""Lead search: one normalised text column and a LIKE, the same on SQLite and PostgreSQL.

`gold_lead_journey.search_text` holds the lead's company name, contact name, email and
phone, case-folded and without diacritics (Romanian leads are typed both ways: 'Bănățeană'
and 'Banateana'). The API folds the user's query with the same function and matches with
`search_text LIKE :pattern ESCAPE '\'`; PostgreSQL serves it from a trigram index.
"""

from __future__ import annotations

import unicodedata


def search_key(*parts: str | None) -> str | None:
    """Text as `search` matches it: case-folded, without diacritics (ș = s), one line a part.

    The API builds its LIKE pattern from the user's query with the same function
    (`search_pattern`), so 'Banateana' finds 'Ferma Bănățeană' on SQLite and PostgreSQL alike.
    """
    lines = [_fold(part) for part in parts if part]
    return "\n".join(line for line in lines if line) or None


def search_pattern(query: str) -> str:
    r"""A LIKE pattern (use with ESCAPE '\') matching rows whose search_text holds `query`."""
    folded = _fold(query).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{folded}%"


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(plain.casefold().split())
