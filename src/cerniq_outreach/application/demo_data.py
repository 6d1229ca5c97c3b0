"""Demo data: a phone pool with mixed warm-up ages and plausible Romanian farm leads.

Everything is drawn from a generator seeded with `seed`, so a seed gives the same pool and
the same leads every time. Phone numbers use the 0740 000 xxx block and leads the 0790 block
with `.invalid` addresses for half the emails (RFC 2606: never a real inbox); the demo runs
on the sandbox only and refuses to start with a live provider key, so it never writes to a
real person.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from typing import Final

import msgspec

from cerniq_outreach.application.enrolment import LeadInput
from cerniq_outreach.domain.consent import ConsentRecord
from cerniq_outreach.domain.enums import LawfulBasis, OptOutScope
from cerniq_outreach.domain.events import Company

DEMO_TENANT: Final = "demo"

_PREFIXES: Final = ("Agro", "Ferma", "Cereal", "Agricola", "Bio", "Terra", "Holding Agro", "Vita")
_NAMES: Final = (
    "Verde",
    "Câmpia",
    "Dunărea",
    "Bărăgan",
    "Moldova",
    "Someș",
    "Mureș",
    "Olt",
    "Prahova",
    "Siret",
    "Carpați",
    "Delta",
    "Holda",
    "Spicul",
    "Grâul",
    "Floarea Soarelui",
    "Via",
    "Livada",
    "Pajiștea",
    "Brazda",
)
_FORMS: Final = ("SRL", "SA", "SCA", "II", "PFA")
_COUNTIES: Final = (
    "Dolj",
    "Olt",
    "Teleorman",
    "Ialomița",
    "Călărași",
    "Constanța",
    "Brăila",
    "Timiș",
    "Arad",
    "Bihor",
    "Iași",
    "Botoșani",
    "Suceava",
    "Vaslui",
    "Buzău",
    "Giurgiu",
    None,
)
_FIRST: Final = (
    "Ion",
    "Gheorghe",
    "Maria",
    "Elena",
    "Vasile",
    "Constantin",
    "Ana",
    "Mihai",
    "Andreea",
    "Florin",
    "Ioana",
    "Dumitru",
    "Cristina",
    "Nicolae",
    "Daniela",
)
_LAST: Final = (
    "Popescu",
    "Ionescu",
    "Popa",
    "Stan",
    "Dumitru",
    "Stoica",
    "Gheorghe",
    "Matei",
    "Ciobanu",
    "Rusu",
    "Munteanu",
    "Marin",
    "Tudor",
    "Dinu",
    "Lungu",
)
_WARMUP_AGES: Final = (None, None, None, None, 25, 18, 14, 10, 7, 3, 0)
"""Days since warm-up began (None: fully warm): the pool mixes veterans and new numbers."""


class DemoPhone(msgspec.Struct, frozen=True, kw_only=True):
    """One pool number of the demo."""

    number: str
    label: str
    warmup_started: date | None


def demo_phones(count: int, *, seed: int, today: date) -> list[DemoPhone]:
    """`count` pool numbers, warm-up ages cycling through a mix of young and warm ones."""
    rng = random.Random(f"demo-phones\x1f{seed}")  # noqa: S311 - demo data, not secrets
    phones = []
    for i in range(count):
        age = _WARMUP_AGES[(i + rng.randrange(len(_WARMUP_AGES))) % len(_WARMUP_AGES)]
        phones.append(
            DemoPhone(
                number=f"+40740{i + 1:06d}",
                label=f"Vânzări {i + 1:02d}",
                warmup_started=None if age is None else today - timedelta(days=age),
            )
        )
    return phones


def demo_leads(count: int, *, seed: int, collected_at: datetime) -> list[LeadInput]:
    """`count` leads: most with a phone, most with an email, lawful bases recorded."""
    rng = random.Random(f"demo-leads\x1f{seed}")  # noqa: S311 - demo data, not secrets
    leads = []
    for i in range(count):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        name = f"{rng.choice(_PREFIXES)} {rng.choice(_NAMES)} {rng.choice(_FORMS)}"
        has_phone = rng.random() < 0.85  # noqa: PLR2004 - demo mix
        has_email = rng.random() < 0.75 or not has_phone  # noqa: PLR2004 - demo mix
        slug = "".join(c for c in name.casefold() if c.isalnum())[:20]
        domain = f"{slug}{i}.invalid" if rng.random() < 0.5 else f"{slug}{i}.ro"  # noqa: PLR2004
        company = Company(
            name=name,
            fiscal_code=f"RO{10_000_000 + rng.randrange(89_999_999)}",
            county=rng.choice(_COUNTIES),
            contact_name=f"{first} {last}",
            phone=f"+40790{i:06d}" if has_phone else None,
            email=f"{first.casefold()}@{domain}" if has_email else None,
        )
        consents = [
            ConsentRecord(
                channel_family=OptOutScope.WHATSAPP,
                basis=LawfulBasis.LEGITIMATE_INTEREST,
                evidence=f"demo lead {i + 1}",
                source="demo: trade fair list",
                collected_at=collected_at,
            )
        ]
        draw = rng.random()
        if draw < 0.6:  # noqa: PLR2004 - demo mix: most agreed to email
            basis = LawfulBasis.CONSENT
        elif draw < 0.8:  # noqa: PLR2004
            basis = LawfulBasis.EXISTING_CUSTOMER
        else:
            basis = LawfulBasis.LEGITIMATE_INTEREST  # not enough for email: it is skipped
        consents.append(
            ConsentRecord(
                channel_family=OptOutScope.EMAIL,
                basis=basis,
                evidence=f"demo lead {i + 1}",
                source="demo: web form",
                collected_at=collected_at,
            )
        )
        leads.append(
            LeadInput(
                company=company,
                consents=tuple(consents),
                tags=("demo",),
                source=f"demo lead {i + 1}",
            )
        )
    return leads
