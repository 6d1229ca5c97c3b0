"""Reading a reply offline: sentiment, triggers and a return date, by deterministic rules.

This is the default ("lexicon") analyser; a model may replace the sentiment part, never the
opt-out rules (`domain.md`: opt-out keywords are read by rules before any model runs).

The text is first normalised (casefolded, diacritics stripped, so `ș`, `ş` and `s` read the
same, spaces collapsed), then read in this order of precedence:

1. opt-out keywords (`OPT_OUT_KEYWORDS` and their variants) always give OPT_OUT and a
   negative label, whatever else the reply says;
2. complaints (spam, ANPC, ANSPDCP, a lawyer, GDPR complaint, harassment ...) give COMPLAINT
   and a negative label;
3. auto-replies and out-of-office notes give OUT_OF_OFFICE, a neutral label and, when the
   text says when, the return day at 09:00 local time (`return_dates`);
4. wrong-person replies give WRONG_PERSON;
5. word and emoji lexicons give the score (`reply_lexicon`), with negation read from the few
   words before a cue ("nu mă interesează" is a refusal, not interest); offers, prices and
   calls asked for give BUYING_SIGNAL.

Confidence is high for keyword hits and low for replies that carry too little to read (a lone
emoji, "ok", "?"), so `review.review_for_reply` hands those to a human as AI_UNCERTAIN.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from cerniq_outreach.domain.enums import ReplyTrigger, SentimentLabel
from cerniq_outreach.domain.errors import ConfigurationError
from cerniq_outreach.domain.reply_lexicon import Reading, any_of, read_sentiment
from cerniq_outreach.domain.return_dates import return_moment

POSITIVE_FROM: Final = 20
"""A score at or above this is a positive label."""

NEGATIVE_FROM: Final = -20
"""A score at or below this is a negative label."""

OPT_OUT_KEYWORDS: Final[tuple[str, ...]] = (
    "STOP",
    "dezabonare",
    "dezabonează-mă",
    "dezabonați-mă",
    "vreau să mă dezabonez",
    "nu mă mai contactați",
    "nu mai contactați",
    "nu ne mai contactați",
    "nu mă mai sunați",
    "nu mai scrieți",
    "nu-mi mai scrieți",
    "nu mai trimiteți mesaje",
    "nu vreau să fiu contactat",
    "nu vreau mesaje",
    "scoateți-mă din listă",
    "scoate-mă din listă",
    "să mă scoateți din listă",
    "ștergeți-mă",
    "ștergeți-mi datele",
    "lăsați-mă în pace",
    "încetați cu mesajele",
    "unsubscribe",
    "opt out",
    "remove me",
    "remove my number",
    "take me off your list",
    "do not contact",
    "don't contact me",
    "leave me alone",
)
"""The opt-out keywords, as people type them; any case, with or without diacritics."""


class ReplyAnalysis(msgspec.Struct, frozen=True, kw_only=True):
    """What a reply says: a coarse label, a score, how sure the rules are, and triggers.

    `score` is in -100..100 and fixes the label (`label_for_score`); `confidence` is in 0..1;
    `out_of_office_until` is the return moment (UTC) when the text says when, else None.
    """

    label: SentimentLabel
    score: int
    confidence: float
    triggers: frozenset[ReplyTrigger] = frozenset()
    out_of_office_until: datetime | None = None


def label_for_score(score: int) -> SentimentLabel:
    """The label a score stands for: positive from +20, negative from -20, else neutral."""
    if score >= POSITIVE_FROM:
        return SentimentLabel.POSITIVE
    if score <= NEGATIVE_FROM:
        return SentimentLabel.NEGATIVE
    return SentimentLabel.NEUTRAL


_SPELLINGS = str.maketrans(
    {
        "\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\u00b4": "'",
        "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": " - ", "\u2014": " - ",
    }
)  # fmt: skip


def normalise(text: str) -> str:
    """Casefold, strip diacritics (ș ş ț ţ ă â î and the rest), unify quotes, collapse spaces."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_SPELLINGS).casefold())
    # Mn also drops emoji variation selectors, so "❤️" and "❤" read the same.
    bare = "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
    return " ".join(bare.split())


# Highest score an objection can have: an opt-out is a firm no, a complaint an angry one.
_OPT_OUT_SCORE: Final = -60
_COMPLAINT_SCORE: Final = -80

# Patterns read normalised text: lower case, no diacritics, single spaces.
_OPT_OUT = any_of(
    r"(?<!non-)\bstop\b",  # "program non-stop" is opening hours, not an objection
    r"\bdezabon\w*",
    r"\bunsubscrib\w*",
    r"\bopt[- ]?out\b",
    r"\bnu(?:-mi|-ne| ma| ne| mi)? mai (?:contact\w*|suna\w*|scri\w*|trimit\w*|deranj\w*)",
    r"\bnu(?:-mi|-ne| imi| ne| mi)?(?: mai)? trimite\w* (?:mesaje|e-?mailuri|sms\w*|oferte)",
    r"\bnu (?:vreau|vrem|doresc|dorim) (?:sa )?(?:mai )?(?:fiu|fim) contactat\w*",
    r"\bnu (?:mai )?(?:vreau|vrem|doresc|dorim) (?:sa (?:mai )?primesc |sa (?:mai )?primim )?"
    r"(?:mesaje|e-?mailuri|sms\w*|oferte|reclame)\b",
    r"\bscoate\w*(?:-ma|-ne)? (?:de )?din (?:lista|listele|baza|evidenta)",
    r"\b(?:ma|ne) (?:scoate|elimina|sterge)\w* din (?:lista|listele|baza|evidenta)",
    r"\b(?:elimina|sterge)\w*-(?:ma|ne)\b",
    r"\b(?:elimina|sterge)\w*(?:-mi|-ne)? (?:datele|datelor|numarul|numarului|contactul)",
    r"\blasa\w*-(?:ma|ne) in pace\b",
    r"\binceta\w* (?:cu (?:mesaj\w*|spam\w*)|sa (?:mai )?(?:ma |ne )?(?:contact|sun|scri|trimit))",
    r"\bremove (?:me|us|my (?:number|email|address|details|data|contact))\b",
    r"\btake (?:me|us) off\b",
    r"\bdelete my (?:number|email|address|details|data|contact)\b",
    r"\b(?:do not|don'?t) (?:contact|message|text|e-?mail|write to)\b",
    r"\bleave (?:me|us) alone\b",
)
_COMPLAINT = any_of(
    r"\bspam\w*",
    r"\breclamati[ei]\w*",
    r"\breclam(?:ez|am|at|ati)?\b",  # "reclamă" (an advert) is left alone
    r"\banpc\b",
    r"\banspdcp\b",
    r"\bprotectia (?:datelor|consumatorului|consumatorilor)\b",
    r"\bplanger\w*",
    r"\bsesizar\w*",
    r"\bavocat\w*",
    r"\b(?:in )?judecata\b",
    r"\bin instanta\b",
    r"\bilegal\w*",
    r"\bhartui\w*",
    r"\bnesolicitat\w*",
    r"\bfara (?:acordul|consimtamant\w*|permisiune\w*)",
    r"\bnu v-am dat (?:\w+ ){0,2}?(?:acord\w*|consimtamant\w*|permisiune\w*)",
    r"\braport(?:ez|am|at|ati)\b",
    r"\bpoliti[ae]\b",
    r"\b(?:incalca|incalcare|violat|breach)\w*",
    r"\bproblem\w* (?:\w+ ){0,2}?(?:cu|with) (?:the )?gdpr",
    r"\bcomplain\w*",
    r"\breport(?:ing|ed)?(?: (?:you|this|it|them|your))\b",
    r"\breported\b",
    r"\bharass\w*",
    r"\bunsolicited\b",
    r"\b(?:lawyer|attorney)s?\b",
    r"\blegal action\b",
    r"\bsue you\b",
    r"\billegal\w*",
    r"\bnever (?:gave|given|agreed|consented)\b",
    r"\bwithout (?:my |our |any )?(?:consent|permission)\b",
    r"\bdata protection\b",
    r"\bpolice\b",
)
_OUT_OF_OFFICE = any_of(
    r"\bconcediu\w*",
    r"\b(?:raspuns|mesaj) automat\w*",
    r"\bauto[- ]?(?:reply|response|responder|raspuns)\b",
    r"\bautomatic (?:reply|response)\b",
    r"\bout of (?:the )?office\b",
    r"\booo\b",
    r"\bon (?:holiday|vacation|leave|annual leave|sick leave|maternity leave|parental leave)\b",
    r"\bin vacanta\b",
    r"\bcurrently (?:away|out|travell?ing)\b",
    r"\baway from (?:the office|my desk|work)\b",
    r"\bwill be back\b",
    r"\bback in the office\b",
    r"\blimited access to (?:my )?e-?mail\b",
    r"\blipsesc (?:din|de la|pana)\b",
    r"\bsunt plecat\w*",
    r"\bplecat din (?:tara|oras|birou)\b",
    r"\brevin la birou\b",
    r"\bbiroul (?:este |e )?inchis\b",
    r"\bin afara biroului\b",
    r"\bin deplasare\b",
    r"\bnu sunt (?:la birou|disponibil\w*)\b",
)
_WRONG_PERSON = any_of(
    r"\bnu sunt eu\b",
    r"\bgresit\w*(?: de)? (?:persoana|numar\w*|adresa|firma)\b",
    r"\b(?:persoana|numar\w*|adresa) gresit\w*",
    r"\b(?:ati|ai|v-ati) gresit\b",
    r"\bnu (?:mai )?lucrez (?:la|acolo|in|pentru)\b",
    r"\bnu mai lucreaza\b",
    r"\bnu mai (?:e|este) (?:in|la) (?:firma|companie|societate|ferma)\b",
    r"\ba plecat (?:din|de la) (?:firma|companie|societate|ferma)\b",
    r"\bs-a pensionat\b",
    r"\bnu (?:mai )?ma ocup\b",
    r"\bnu (?:eu )?(?:decid|hotarasc)\b",
    r"\bdecizia (?:o )?(?:ia|iau)\b",
    r"\bnu (?:sunt|e|este) (?:eu )?(?:administrator|patron|proprietar|persoana potrivita|"
    r"responsabil)\w*",
    r"\bsunt doar (?:un |o )?(?:angajat|agronom|contabil|secretar|sofer|muncitor|mecanic|"
    r"tractorist|inginer|paznic)\w*",
    r"\bnu (?:am|avem) (?:nicio|vreo) (?:ferma|firma)\b",
    r"\b(?:firma|ferma|societatea) (?:e|este) a (?:fratelui|sotului|sotiei|tatalui|mamei|"
    r"fiului|fiicei|unchiului|vecinului|patronului|sefului|altcuiva)\b",
    r"\b(?:ii|le) (?:dau|transmit) (?:mesajul|mai departe)\b",
    r"\bnumarul (?:asta |acesta )?(?:e|este) (?:al meu )?personal\b",
    r"\bwrong (?:number|person|contact|address|email)\b",
    r"\bnot (?:the )?(?:right|correct) (?:person|contact|number)\b",
    r"\bno longer (?:works?|with|at|employed)\b",
    r"\b(?:doesn'?t|does not|don'?t|do not) work (?:here|there|for|at)\b",
    r"\b(?:left|quit) the (?:company|firm|farm|business)\b",
    r"\bnot (?:in charge|responsible) (?:of|for)\b",
    r"\bnot my (?:department|decision|area)\b",
    r"\bwill forward\b",
    r"\bi'?ll forward\b",
)


def analyse_reply(
    text: str, *, received_at: datetime, zone: str = "Europe/Bucharest"
) -> ReplyAnalysis:
    """Read one reply: label, score, confidence, triggers and an out-of-office return date.

    Args:
        text: the reply as the lead wrote it.
        received_at: when it arrived (tz-aware); relative dates ("luni", "next week") count
            from its local day in `zone`.
        zone: the IANA time zone the lead's days are counted in.

    Raises:
        ValueError: `received_at` is naive.
        ConfigurationError: `zone` is not a time zone.
    """
    if received_at.tzinfo is None or received_at.utcoffset() is None:
        raise ValueError(f"a tz-aware datetime is required, got {received_at!r}")
    tz = _zone(zone)
    norm = normalise(text)
    triggers: set[ReplyTrigger] = set()
    for trigger, pattern in (
        (ReplyTrigger.OPT_OUT, _OPT_OUT),
        (ReplyTrigger.COMPLAINT, _COMPLAINT),
        (ReplyTrigger.OUT_OF_OFFICE, _OUT_OF_OFFICE),
        (ReplyTrigger.WRONG_PERSON, _WRONG_PERSON),
    ):
        if pattern.search(norm):
            triggers.add(trigger)
    reading = read_sentiment(norm)
    score = reading.score
    until = None
    if ReplyTrigger.OPT_OUT in triggers or ReplyTrigger.COMPLAINT in triggers:
        # Whatever else the reply says, an objection is negative, and never a sale.
        triggers.discard(ReplyTrigger.OUT_OF_OFFICE)
        cap = _COMPLAINT_SCORE if ReplyTrigger.COMPLAINT in triggers else _OPT_OUT_SCORE
        score = min(score, cap)
    elif ReplyTrigger.OUT_OF_OFFICE in triggers:
        # An auto-reply says nothing about the offer; its return date is what matters.
        score = max(NEGATIVE_FROM + 1, min(POSITIVE_FROM - 1, score))
        until = return_moment(norm, received_at, tz)
    elif reading.buying:
        triggers.add(ReplyTrigger.BUYING_SIGNAL)
    return ReplyAnalysis(
        label=label_for_score(score),
        score=score,
        confidence=_confidence(norm, reading, frozenset(triggers)),
        triggers=frozenset(triggers),
        out_of_office_until=until,
    )


def _zone(zone: str) -> ZoneInfo:
    try:
        return ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigurationError(f"unknown time zone {zone!r}") from exc


# Replies too short to read anything from with confidence: "ok", "hmm", "ok ok".
_AMBIGUOUS: Final = frozenset({"ok", "okay", "oke", "k", "kk", "hmm", "hm", "aha", "mda"})
_AMBIGUOUS_LENGTH: Final = 2
_WORDS = re.compile(r"[\w']+")
_TRIGGER_CONFIDENCE: Final = {
    ReplyTrigger.OPT_OUT: 0.95,
    ReplyTrigger.COMPLAINT: 0.9,
    ReplyTrigger.OUT_OF_OFFICE: 0.9,
    ReplyTrigger.WRONG_PERSON: 0.85,
}


def _confidence(norm: str, reading: Reading, triggers: frozenset[ReplyTrigger]) -> float:
    keyed = [_TRIGGER_CONFIDENCE[t] for t in triggers if t in _TRIGGER_CONFIDENCE]
    if keyed:
        return max(keyed)
    if not norm:
        return 0.0
    has_words = any(c.isalnum() for c in norm)
    if reading.cues == 0:
        if not has_words:
            return 0.1  # "?", "...", an emoji that says nothing
        words = _WORDS.findall(norm)
        return 0.3 if len(words) <= _AMBIGUOUS_LENGTH and set(words) <= _AMBIGUOUS else 0.45
    if not has_words:
        return 0.5  # a lone 👍 reads as yes, but not surely
    confidence = 0.55 + 0.1 * min(reading.cues, 3)
    if reading.mixed:
        confidence -= 0.2
    return round(confidence, 2)
