"""The sentiment lexicon of the offline reply analyser: weighted cues, negation, hedges.

Cues are regular expressions over normalised text (see `reply_analysis.normalise`): lower
case, no diacritics, single spaces. Each cue counts once however often it appears, and the
longest match wins where cues overlap. The strongest cue of each sign sets the score and the
others add a share, so three polite reasons to say no still read as one polite "no" (MEDIUM
review), while hostility ("v-am mai spus", 😡) goes past -50 (HIGH review). A negator among the
three words before a cue, within its clause, turns it around: "nu mă interesează" is a refusal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final


def any_of(*patterns: str) -> re.Pattern[str]:
    """One compiled pattern matching any of `patterns`."""
    return re.compile("|".join(f"(?:{p})" for p in patterns))


@dataclass(frozen=True, slots=True)
class _Cue:
    """One lexicon entry: its weight, its weight when negated, and what else it signals."""

    pattern: re.Pattern[str]
    weight: int
    negated: int
    buying: bool = False
    hedge: bool = False


def _cue(
    weight: int,
    *patterns: str,
    negated: int | None = None,
    buying: bool = False,
    hedge: bool = False,
) -> _Cue:
    return _Cue(any_of(*patterns), weight, weight if negated is None else negated, buying, hedge)


_CLAUSE_END = r"(?=\s?[.!?,;]|\s*$)"
_CLAUSE_START = r"(?:^|(?<=[.!?,;])|(?<=[.!?,;] ))"
_LEXICON: Final[tuple[_Cue, ...]] = (
    # Interest, and asking for an offer, a price list, a call or a meeting.
    _cue(
        45,
        r"\b(?:ma|ne|m-ar|ne-ar) interes(?:eaza|a)\b",
        r"\binteresat\w*",
        r"\binterested\b",
        negated=-40,
        buying=True,
    ),
    _cue(
        45,
        r"\btrimite\w*(?:-mi|-ne)?(?: \w+){0,3}? (?:oferta|oferte|detalii|pret\w*|informati\w*|"
        r"cotati\w*|prezentar\w*|brosur\w*|catalog\w*)\b",
        r"\bsend (?:me |us )?(?:\w+ ){0,2}?(?:price|prices|pricing|offer|quote|details|info|"
        r"information|brochure|catalog\w*|proposal)\b",
        r"\bas vrea (?:\w+ ){0,4}?(?:detalii|oferta|prezentare|informatii|sa vad|sa aflu)",
        r"\bmai multe (?:detalii|informatii)\b",
        r"\b(?:i'?d|i would|we'?d|we would) (?:like|love) (?:\w+ ){0,3}?(?:details|info|"
        r"information|offer|quote|price|demo|call|meeting)\b",
        r"\bsuna\w*-(?:ma|ne)\b",
        r"\b(?:dati|da)-(?:mi|ne) (?:un )?(?:telefon|apel)\b",
        r"\bastept\w* (?:un |sa )?(?:telefon|apel\w*|oferta|detalii|sa ma sunati)",
        r"\b(?:call|ring|phone) (?:me|us)\b",
        r"\b(?:schedule|book|set up|arrange) (?:a |an )?(?:call|meeting|demo|visit)\b",
        r"\bcand (?:puteti|ati putea|ne putem|va putem) (?:veni|trece|suna|vedea|intalni)\b",
        r"\bprogram\w* (?:o |un )?(?:intalnire|apel|discutie|vizita|demonstratie)\b",
        negated=-20,
        buying=True,
    ),
    _cue(
        35,
        r"\b(?:putem|hai sa|sa) (?:discutam|vorbim|ne vedem|ne intalnim)\b",
        r"\bputem discuta\b",
        r"\blet'?s (?:talk|meet|discuss|chat)\b",
        r"\bcan we (?:talk|meet|discuss|chat)\b",
        negated=-25,
        buying=True,
    ),
    # A price asked about is a signal, but on its own not yet enthusiasm.
    _cue(
        10,
        r"\bcat costa\b",
        r"\bce pret\b",
        r"\bpret(?:ul|ului|uri|urile|urilor)?\b",  # not "prețuiesc" (I value)
        r"\btarif\w*",
        r"\bhow much\b",
        r"\bcost(?:a|ul|uri|urile|s|ing)?\b",  # not Costel, Costin
        r"\bpric(?:e|es|ing)\b",
        negated=0,
        buying=True,
    ),
    # Yes, sure, and warm appraisals.
    _cue(
        35,
        r"\bda\b",
        r"\byes\b",
        r"\byep\b",
        r"\bsigur\b",
        r"\bdesigur\b",
        r"\bbineinteles\b",
        r"\bsure\b",
        r"\bof course\b",
        r"\babsolut\w*",
        r"\bde acord\b",
        r"\bagreed\b",
        negated=-25,
    ),
    _cue(
        30,
        r"\binteresant\w*",
        r"\binteresting\b",
        r"\bsuna (?:bine|interesant|ok)\b",
        r"\bsounds (?:good|great|interesting|ok)\b",
        r"\b(?:buna|good|great) idee?a?\b",
        r"\bsuper\b",
        r"\bexcelent\w*",
        r"\bperfect\w*",
        r"\bminunat\w*",
        r"\bgreat\b",
        r"\bexcellent\b",
        r"\bawesome\b",
        r"\bcurio(?:s|asa|si|ase)\b",
        r"\bcurious\b",
        r"\butil[ae]?\b",
        r"\bfolositor\w*",
        r"\buseful\b",
        r"\bhelpful\b",
        r"\b(?:ne-ar|mi-ar|ar) (?:ajuta|prinde bine)\b",
        r"\bde ce nu\b",
        r"\bwhy not\b",
        r"\bcu placere\b",
        r"\bwith pleasure\b",
        negated=-25,
    ),
    _cue(15, r"\bbine\b", r"\bgood\b(?! (?:morning|afternoon|evening|day))", negated=-25),
    _cue(25, "[👍🙂😊😀😃😄😁👌🙏❤👏✅💪🤝😉🎉🤗☺😍]", r"(?<!\w)(?::-?\)|=\)|:d\b)"),
    # Refusals: firm but polite. Several together still read as one polite "no".
    _cue(-40, _CLAUSE_START + r"(?:nu|no|nope|nah)" + _CLAUSE_END),
    _cue(
        -40,
        r"\bnu,? (?:multumesc|multumim|mersi)\b",
        r"\bno,? (?:thanks|thank you)\b",
        r"\bnu (?:e|este) (?:cazul|momentul|pentru noi)\b",
        r"\bnot (?:for us|now|at the moment|at this time)\b",
        r"\b(?:nu (?:am|avem)|n-am|n-avem) nevoie\b",
        r"\b(?:don'?t|do not|doesn'?t) need\b",
        r"\bno need\b",
    ),
    _cue(-45, r"\bnu (?:vreau|vrem|dorim|doresc)" + _CLAUSE_END),
    _cue(-15, r"\bnu (?:vreau|vrem|dorim|doresc)\b"),
    _cue(-55, r"\bin niciun caz\b", r"\bnici vorba\b", r"\bno way\b", r"\bdefinitely not\b"),
    _cue(-30, r"\bnu acum\b", r"\bnot now\b"),
    _cue(
        -30,
        r"\b(?:avem|am) deja\b",
        r"\balready (?:have|use|using|work with|got)\b",
        r"\bacelasi (?:furnizor|distribuitor|partener)\b",
        r"\b(?:suntem|sunt) multumit\w*",
        r"\b(?:we'?re|we are|i'?m|i am) happy with (?:our|my|the current)\b",
    ),
    _cue(-35, r"\bprea scump\w*", r"\btoo (?:expensive|pricey)\b"),
    _cue(-15, r"\bscump\w*", r"\bexpensive\b"),
    _cue(
        -25,
        r"\b(?:nu (?:a )?mers|n-a mers|n-a functionat|nu functioneaza)\b",
        r"\bdidn'?t work\b",
        r"\brau\b",
        r"\bbad\b",
        r"\bterrible\b",
        negated=10,
    ),
    _cue(-15, r"\bpierder\w*", r"\blosses\b"),
    _cue(-10, r"\bprobleme?\b", r"\bproblema\b", r"\bproblems?\b", negated=0),
    # Hostility: angry, repeated or blocked. This is what pushes a reply to a HIGH review.
    _cue(
        -60,
        r"\bv-am (?:mai )?(?:spus|zis)\b",
        r"\bi (?:already )?told you\b",
        r"\b(?:v-am|te-am) blocat\b",
        r"\bblocked\b",
        r"\benervant\w*",
        r"\bannoying\b",
        r"\bm-am saturat\b",
        r"\bsatul\w* de\b",
        r"\bridicol\w*",
        r"\bridiculous\b",
        r"\bbatai?e de joc\b",
        r"\bteapa\b",
        r"\bescroc\w*",
        r"\bscam\w*",
        r"\bfraud\w*",
    ),
    _cue(-35, r"\bderanj\w*", r"\bbother\w*", negated=10),
    _cue(-30, "[😡😠👎🤬😤🙅❌🛑😒🙄💩🖕]", r"(?<!\w):-?\("),
    # Hedges and acknowledgements: evidence the reply is neutral on purpose.
    _cue(
        0,
        r"\bpoate\b",
        r"\bdeocamdata\b",
        r"\bdepinde\b",
        r"\bvedem\b",
        r"\bne (?:mai )?gandim\b",
        r"\bma (?:mai )?gandesc\b",
        r"\bmai tarziu\b",
        r"\bla anul\b",
        r"\balta data\b",
        r"\bcand am timp\b",
        r"\bfara obligati\w*",
        r"\bnu (?:sunt|suntem) sigur\w*",
        r"\bmaybe\b",
        r"\bperhaps\b",
        r"\blater\b",
        r"\bfor now\b",
        r"\bjust asking\b",
        r"\bdepends\b",
        r"\bwe'?ll see\b",
        r"\bnot sure\b",
        r"\bthink about it\b",
        "🤔",
        hedge=True,
    ),
    _cue(
        0,
        r"\bam primit\b",
        r"\breceived\b",
        r"\brevin\b",
        r"\bget back to you\b",
        r"\bmultumesc\b",
        r"\bmultumim\b",
        r"\bmersi\b",
        r"\bthanks?\b",
        r"\bthank you\b",
    ),
)

# Words that turn the cue right after them around ("nu mă interesează", "not interested").
_NEGATORS: Final = frozenset(
    {"nu", "n", "nici", "niciodata", "no", "not", "never", "don't", "dont", "doesn't",
     "doesnt", "isn't", "isnt", "aren't", "won't", "wouldn't", "didn't", "can't", "cannot"}
)  # fmt: skip
_NEGATION_REACH: Final = 3  # words before a cue, within its clause
_CLAUSE_BREAK = re.compile(r"[.!?;,:]|\b(?:dar|insa|but|however)\b")
_WORD = re.compile(r"[\w']+")
# A cue this strong is the reply's point: a hedge beside it does not water it down.
_DECISIVE: Final = 40
_SECONDARY_SHARE: Final = 0.15


def _negated(text: str, start: int) -> bool:
    clause = _CLAUSE_BREAK.split(text[max(0, start - 60) : start])[-1]
    return any(w in _NEGATORS for w in _WORD.findall(clause)[-_NEGATION_REACH:])


@dataclass(frozen=True, slots=True)
class Reading:
    """What the lexicon found in a text.

    Attributes:
        score: the cues weighed together, in -100..100.
        cues: how many distinct cues were found (a cue found negated counts apart).
        mixed: cues of both signs were found ("da, dar prea scump").
        buying: a buying cue was found and not negated.
    """

    score: int
    cues: int
    mixed: bool
    buying: bool


def _combined(magnitudes: list[int]) -> float:
    ordered = sorted(magnitudes, reverse=True)
    return ordered[0] + _SECONDARY_SHARE * sum(ordered[1:]) if ordered else 0.0


def read_sentiment(text: str) -> Reading:
    """The lexicon cues of a normalised text, weighed into a score in -100..100."""
    found = [
        (m.start(), m.end(), index)
        for index, cue in enumerate(_LEXICON)
        for m in cue.pattern.finditer(text)
    ]
    # Longest match first, so "nu, mulțumesc" is one refusal and not "no" plus thanks.
    found.sort(key=lambda f: (f[0] - f[1], f[0]))
    taken = bytearray(len(text))  # 1 where an accepted cue already reads the text
    seen: set[tuple[int, bool]] = set()
    for start, end, index in found:
        if not any(taken[start:end]):
            taken[start:end] = b"\x01" * (end - start)
            seen.add((index, _negated(text, start)))
    cues = [(_LEXICON[index], negated) for index, negated in seen]
    weights = [cue.negated if negated else cue.weight for cue, negated in cues]
    raw = _combined([w for w in weights if w > 0]) - _combined([-w for w in weights if w < 0])
    if any(cue.hedge for cue, _ in cues) and max(map(abs, weights), default=0) < _DECISIVE:
        raw /= 2
    return Reading(
        score=max(-100, min(100, round(raw))),
        cues=len(cues),
        mixed=any(w > 0 for w in weights) and any(w < 0 for w in weights),
        buying=any(cue.buying and not negated for cue, negated in cues),
    )
