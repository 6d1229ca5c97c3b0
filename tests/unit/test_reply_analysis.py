"""The offline reply analyser reads Romanian, English and emoji replies by fixed rules."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from cerniq_outreach.adapters.channels.reply_corpus import ReplyKind
from cerniq_outreach.domain.enums import Priority, ReplyTrigger, ReviewReason, SentimentLabel
from cerniq_outreach.domain.errors import ConfigurationError
from cerniq_outreach.domain.reply_analysis import (
    OPT_OUT_KEYWORDS,
    ReplyAnalysis,
    analyse_reply,
    label_for_score,
    normalise,
)
from cerniq_outreach.domain.review import UNCERTAIN_CONFIDENCE, review_for_reply

BUCHAREST = ZoneInfo("Europe/Bucharest")
AT = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # Monday 2 March 2026, 10:00 in Bucharest
POSITIVE, NEUTRAL, NEGATIVE = SentimentLabel
OPT_OUT, COMPLAINT, BUYING, AWAY, WRONG = (
    ReplyTrigger.OPT_OUT,
    ReplyTrigger.COMPLAINT,
    ReplyTrigger.BUYING_SIGNAL,
    ReplyTrigger.OUT_OF_OFFICE,
    ReplyTrigger.WRONG_PERSON,
)


def analyse(text: str, at: datetime = AT) -> ReplyAnalysis:
    return analyse_reply(text, received_at=at, zone="Europe/Bucharest")


def review_of(analysis: ReplyAnalysis):
    return review_for_reply(analysis.score, analysis.label, analysis.confidence, analysis.triggers)


def strip_romanian(text: str) -> str:
    return text.translate(str.maketrans("ăâîșşțţĂÂÎȘŞȚŢ", "aaissttAAISSTT"))


def cedilla(text: str) -> str:
    """The legacy cedilla letters many phones still type instead of the comma below."""
    return text.translate(str.maketrans("șțȘȚ", "şţŞŢ"))


# --- Triggers, one table per trigger --------------------------------------------------------

OPT_OUTS = [
    "STOP",
    "stop.",
    "Dezabonare",
    "dezabonează-mă de la newsletter",
    "Vă rog să nu mă mai contactați pe acest număr.",
    "Nu-mi mai scrieți!",
    "nu mai scrieti va rog",
    "Scoateți-mă din listă, mulțumesc.",
    "Ștergeți-mă din baza voastră de date",
    "Vreau să fie șterse... ștergeți-mi datele, vă rog.",
    "Lăsați-mă în pace!",
    "Please unsubscribe us.",
    "Do not contact me again.",
    "Take me off your mailing list",
    "Leave me alone!",
    "Ok, dar STOP la mesaje pe WhatsApp",  # mixed, and "ok" does not soften it
    "Da, mă interesa anul trecut. Acum: dezabonare",  # interest words do not outweigh it
    "Sorry, vă rog remove me",
]
COMPLAINTS = [
    "Vă dau în judecată dacă mai primesc ceva.",
    "Am depus o reclamație la ANPC.",
    "Asta e hărțuire.",
    "Spam!!!",
    "Fac sesizare la ANSPDCP.",
    "Mesajele nesolicitate sunt ilegale.",
    "I will file a complaint with the data protection authority.",
    "This is harassment.",
    "You have no right to use my data without consent",
]
WRONG_PERSONS = [
    "Nu sunt eu, ați greșit numărul.",
    "nu mai lucrez la ferma de anul trecut",
    "Nu lucrez acolo.",
    "Domnul Ionescu nu mai lucrează la noi.",
    "Eu nu mă ocup de asta, vă dau numărul colegului.",
    "Sorry, wrong person.",
    "He no longer works here.",
    "I don't work for that company.",
]
OUT_OF_OFFICE = [
    "Sunt în concediu, revin pe 15 martie.",
    "Răspuns automat: sunt plecat până pe 3.04.",
    "Out of office. Back on March 15th.",
    "I'm on vacation until 2026-03-20.",
    "sunt in deplasare pana vineri",
    "Auto-reply: back tomorrow",
    "Mesaj automat. Mulțumesc, vă răspund cât de curând.",
]
BUYING_SIGNALS = [
    "Cât costă?",
    "Trimiteți-mi oferta pe mail.",
    "Mă interesează, sunați-mă.",
    "Ce preț are pentru 200 ha?",
    "Interested, send me the price list",
    "What's the price?",
    "Sounds good. Can we schedule a call?",
]


def variants(text: str) -> list[str]:
    """The reply as typed, without diacritics, with cedillas, and shouted."""
    return sorted({text, strip_romanian(text), cedilla(text), text.upper()})


@pytest.mark.parametrize("text", [v for t in OPT_OUTS for v in variants(t)])
def test_an_opt_out_keyword_always_opts_out_with_a_negative_label(text):
    """Opt-out wins over everything: OPT_OUT, negative, sure, and never a buying signal."""
    result = analyse(text)
    assert OPT_OUT in result.triggers
    assert BUYING not in result.triggers
    assert result.label is NEGATIVE
    assert result.confidence >= 0.9
    assert review_of(result).priority in {Priority.HIGH, Priority.URGENT}


@pytest.mark.parametrize("text", [v for t in COMPLAINTS for v in variants(t)])
def test_a_complaint_opens_an_urgent_review(text):
    """Spam, ANPC, ANSPDCP, a lawsuit or harassment: COMPLAINT, negative, URGENT review."""
    result = analyse(text)
    assert COMPLAINT in result.triggers
    assert result.label is NEGATIVE
    assert review_of(result).priority is Priority.URGENT


@pytest.mark.parametrize("text", [v for t in WRONG_PERSONS for v in variants(t)])
def test_a_wrong_person_reply_asks_a_human_to_redirect(text):
    """Replies like "nu sunt eu", "nu mai lucrez la", "wrong number": WRONG_PERSON, MEDIUM."""
    result = analyse(text)
    assert result.triggers == {WRONG}
    assert review_of(result) is not None
    assert review_of(result).priority is Priority.MEDIUM


@pytest.mark.parametrize("text", [v for t in OUT_OF_OFFICE for v in variants(t)])
def test_an_auto_reply_is_out_of_office_and_neutral(text):
    """Holidays and auto-replies: OUT_OF_OFFICE with a neutral label and no review."""
    result = analyse(text)
    assert result.triggers == {AWAY}
    assert result.label is NEUTRAL
    assert review_of(result) is None


@pytest.mark.parametrize("text", [v for t in BUYING_SIGNALS for v in variants(t)])
def test_asking_for_a_price_an_offer_or_a_call_is_a_buying_signal(text):
    """A price, an offer or a call asked for: BUYING_SIGNAL, and never a negative label."""
    result = analyse(text)
    assert result.triggers == {BUYING}
    assert result.label is not NEGATIVE


@pytest.mark.parametrize(
    ("text", "absent"),
    [
        ("Program non-stop, sunați oricând", OPT_OUT),
        ("Nu sunt interesat de oferte pe WhatsApp.", OPT_OUT),
        ("Am văzut reclama voastră la Agraria.", COMPLAINT),
        ("De unde aveți numărul meu?", COMPLAINT),
        ("Revin eu cu un răspuns după recoltare.", AWAY),
        ("Sunt doar curios, ce presupune?", WRONG),
        ("Vorbiți cu colegul meu, el se ocupă.", WRONG),
        ("Nu mă interesează prețul.", BUYING),
        ("Sunt Costel, vă prețuiesc efortul.", BUYING),
        ("Not interested in any offer.", BUYING),
    ],
)
def test_look_alike_words_do_not_trigger(text, absent):
    """Words that resemble a trigger ("non-stop", "reclama", "revin") do not raise it."""
    assert absent not in analyse(text).triggers


def test_an_auto_reply_is_no_buying_signal_and_a_complaint_is_no_auto_reply():
    """An auto-reply's "call me" is not interest; a complaint in an auto-reply is still one."""
    assert analyse("Out of office until Friday, please call me on my mobile").triggers == {AWAY}
    assert analyse("Răspuns automat: spam raportat").triggers == {COMPLAINT}


# --- Sentiment: lexicon, negation, emoji, confidence ----------------------------------------


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("Da", POSITIVE),
        ("Sigur, sună interesant.", POSITIVE),
        ("Super, mulțumesc! Aștept oferta.", POSITIVE),
        ("Thanks, sounds great. When can we meet?", POSITIVE),
        ("Nu", NEGATIVE),
        ("No thanks.", NEGATIVE),
        ("Prea scump pentru noi.", NEGATIVE),
        ("Avem deja furnizor.", NEGATIVE),
        ("Am primit, mulțumesc.", NEUTRAL),
        ("Poate. Reveniți peste o lună.", NEUTRAL),
        ("Who is this?", NEUTRAL),
    ],
)
def test_the_lexicon_reads_the_plain_replies(text, label):
    """Yes, warm words and requests read positive; refusals negative; questions neutral."""
    assert analyse(text).label is label
    assert analyse(strip_romanian(text)).label is label


@pytest.mark.parametrize(
    ("affirmed", "negated"),
    [
        ("Mă interesează.", "Nu mă interesează."),
        ("Ma intereseaza", "Nu ma intereseaza deloc"),
        ("Suntem interesați.", "Nu suntem interesați."),
        ("Sunt interesat.", "Nu sunt deloc interesat."),
        ("Interested.", "Not interested at all."),
        ("I'm interested, thanks", "I'm not interested, thanks"),
        ("Ne-ar ajuta.", "Nu ne-ar ajuta."),
    ],
)
def test_a_negation_turns_interest_into_a_refusal(affirmed, negated):
    """A negated "mă interesează" is negative, though it holds the word for interest."""
    yes, no = analyse(affirmed), analyse(negated)
    assert yes.label is POSITIVE
    assert BUYING in yes.triggers or "ajuta" in affirmed
    assert no.label is NEGATIVE
    assert BUYING not in no.triggers


def test_a_negation_does_not_reach_across_a_clause():
    """In "de ce nu. Sunați-mă" the "nu" ends with its sentence: the reply is a yes."""
    result = analyse("Păi da, de ce nu. Sunați-mă mâine.")
    assert result.label is POSITIVE
    assert BUYING in result.triggers


@pytest.mark.parametrize(
    ("text", "label"),
    [("👍", POSITIVE), ("🙂🙂", POSITIVE), ("🙏", POSITIVE), ("😡", NEGATIVE), ("👎", NEGATIVE),
     ("🤔", NEUTRAL), ("🚜", NEUTRAL)],
)  # fmt: skip
def test_an_emoji_alone_gives_a_label_but_little_confidence(text, label):
    """A lone emoji reads as yes or no, but below the review threshold: a human looks."""
    result = analyse(text)
    assert result.label is label
    assert result.confidence < UNCERTAIN_CONFIDENCE
    assert review_of(result) is not None


@pytest.mark.parametrize("text", ["", "   ", "?", "...", "ok", "Ok ok", "hmm"])
def test_a_reply_too_short_to_read_is_uncertain(text):
    """A bare "ok", "?" or nothing: neutral, low confidence, so an AI_UNCERTAIN review opens."""
    result = analyse(text)
    assert result.label is NEUTRAL
    assert result.triggers == frozenset()
    assert result.confidence < UNCERTAIN_CONFIDENCE
    assert review_of(result).reason is ReviewReason.AI_UNCERTAIN


def test_a_clear_reply_is_trusted_and_a_mixed_one_is_not():
    """Several cues of one sign are read with confidence; "da, dar prea scump" is doubted."""
    clear = analyse("Da, mă interesează. Sunați-mă mâine.")
    assert clear.confidence >= 0.8
    assert review_of(clear) is None
    mixed = analyse("Da, dar e prea scump.")
    assert mixed.confidence < UNCERTAIN_CONFIDENCE


@pytest.mark.parametrize(
    ("text", "priority"),
    [
        ("Nu, mulțumesc.", Priority.MEDIUM),
        ("Nu ne interesează, avem deja furnizor și suntem mulțumiți.", Priority.MEDIUM),
        ("V-am mai spus că nu vreau. E enervant! 😡", Priority.HIGH),
    ],
)
def test_a_polite_no_is_a_medium_review_and_hostility_a_high_one(text, priority):
    """Several polite reasons stay above -50; anger and repetition go below it."""
    result = analyse(text)
    assert result.label is NEGATIVE
    assert review_of(result).priority is priority


def test_normalising_strips_diacritics_both_cedilla_and_comma_forms():
    """ș ş s, ț ţ t, ă â a, î i read the same; case, quotes and spaces are unified."""
    assert normalise("  ȘTERGEȚI-MĂ   din  listă ") == "stergeti-ma din lista"
    assert normalise("ŞTERGEŢI-MĂ din listă") == "stergeti-ma din lista"
    assert normalise("Don\u2019t\tcontact\nme") == "don't contact me"
    assert analyse("Mulțumesc, mă interesează") == analyse("Multumesc, ma intereseaza")


# --- Out-of-office return dates -------------------------------------------------------------


def local(year: int, month: int, day: int) -> datetime:
    """09:00 in Bucharest on that day, as UTC (what the analyser returns)."""
    return datetime(year, month, day, 9, tzinfo=BUCHAREST).astimezone(UTC)


@pytest.mark.parametrize(
    ("text", "received", "back"),
    [
        ("Sunt în concediu, revin pe 15 martie.", AT, local(2026, 3, 15)),
        ("Răspuns automat: sunt plecat până pe 3.04.", AT, local(2026, 4, 3)),
        ("Raspuns automat: sunt plecat pana la 20.03.2026", AT, local(2026, 3, 20)),
        ("Out of office. Back on March 15th.", AT, local(2026, 3, 15)),
        ("I'm on vacation until 2026-03-20.", AT, local(2026, 3, 20)),
        ("Automatic reply: out of the office until 12 May 2026", AT, local(2026, 5, 12)),
        ("Lipsesc din birou până luni, 14 aprilie.", AT, local(2026, 4, 14)),
        ("În concediu până la sfârșitul lunii.", AT, local(2026, 4, 1)),
        ("Sunt în concediu, de luni sunt la birou.", AT, local(2026, 3, 9)),
        ("Concediu. Revin săptămâna viitoare.", AT, local(2026, 3, 9)),
        ("Auto-reply: back tomorrow", AT, local(2026, 3, 3)),
        ("Sunt în deplasare până vineri", AT, local(2026, 3, 6)),
        ("I'm on holiday, back next Wednesday", AT, local(2026, 3, 4)),
        # Named twice (a weekday and a date, a start and an end): the later day wins.
        ("Concediu de luni 9 martie până pe 20 martie", AT, local(2026, 3, 20)),
    ],
)
def test_the_return_date_is_read_in_romanian_and_english(text, received, back):
    """Dates with month names, numbers, ISO, weekdays and "next week" give 09:00 that day."""
    assert analyse(text, received).out_of_office_until == back


def test_a_date_without_a_year_rolls_over_to_the_next_year():
    """Written in December, "până pe 7 ianuarie" means January of the next year."""
    december = datetime(2026, 12, 20, 10, tzinfo=UTC)
    result = analyse("Mesaj automat: biroul este închis până pe 7 ianuarie.", december)
    assert result.out_of_office_until == local(2027, 1, 7)


def test_a_weekday_is_the_next_one_strictly_after_the_reply():
    """A "back Monday" written on a Monday means the Monday after, not today."""
    monday = AT
    assert analyse("Out of office, back Monday", monday).out_of_office_until == local(2026, 3, 9)
    sunday = monday - timedelta(days=1)
    assert analyse("Out of office, back Monday", sunday).out_of_office_until == local(2026, 3, 2)


def test_the_reply_day_is_the_local_day_of_the_zone():
    """At 00:30 in Bucharest (22:30 UTC the day before), "tomorrow" is the local tomorrow."""
    late = datetime(2026, 3, 1, 22, 30, tzinfo=UTC)  # already Monday 2 March in Bucharest
    assert analyse("Auto-reply: back tomorrow", late).out_of_office_until == local(2026, 3, 3)


def test_the_return_moment_is_nine_local_on_either_side_of_a_dst_change():
    """Romania moves to summer time on 29 March 2026: 09:00 is 07:00 UTC before, 06:00 after."""
    friday = datetime(2026, 3, 27, 10, tzinfo=UTC)
    before = analyse("Concediu, revin joi", datetime(2026, 3, 23, 10, tzinfo=UTC))
    after = analyse("Concediu, revin luni", friday)
    assert before.out_of_office_until == datetime(2026, 3, 26, 7, tzinfo=UTC)
    assert after.out_of_office_until == datetime(2026, 3, 30, 6, tzinfo=UTC)
    for result in (before, after):
        assert result.out_of_office_until.astimezone(BUCHAREST).hour == 9


@pytest.mark.parametrize(
    "text",
    [
        "Sunt în concediu. Pentru urgențe sunați la fermă.",  # no date at all
        "Raspuns automat: Sunt plecat pana la 20.07.2025.",  # already past: a stale reply
        "Out of office until 31 February",  # no such day
        "Concediu de 2 luni",  # "luni" is also "months": no Monday here
        "Sunt în concediu încă mai 2 săptămâni",  # "mai 2" is "2 more", not 2 May
        "Out of office until 2031-01-01",  # more than a year ahead
    ],
)
def test_no_readable_return_date_leaves_the_default_to_the_caller(text):
    """Without a plausible date the analyser says None, and the caller's default applies."""
    result = analyse(text)
    assert AWAY in result.triggers
    assert result.out_of_office_until is None


def test_only_an_out_of_office_reply_carries_a_return_date():
    """A date in an ordinary reply ("sunați-mă pe 15 martie") is no absence."""
    assert analyse("Da, sunați-mă pe 15 martie").out_of_office_until is None


def test_a_naive_time_or_an_unknown_zone_is_refused():
    """Relative dates need a real instant and a real zone; guessing either would be wrong."""
    with pytest.raises(ValueError, match="tz-aware"):
        analyse_reply("Da", received_at=datetime(2026, 3, 2, 10))  # noqa: DTZ001
    with pytest.raises(ConfigurationError, match="Mars"):
        analyse_reply("Da", received_at=AT, zone="Mars/Olympus_Mons")


# --- Properties over any text ---------------------------------------------------------------

any_text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=200)
received_times = st.datetimes(
    min_value=datetime(2020, 1, 1),  # noqa: DTZ001 - hypothesis bounds are naive by design
    max_value=datetime(2035, 12, 31),  # noqa: DTZ001
    timezones=st.just(UTC),
)
spacing = st.text(alphabet=" \t\n", min_size=1, max_size=3)


@given(text=any_text, received=received_times)
@example(text="", received=AT)
@example(text="👍 STOP 👎", received=AT)
@example(text="out of office until 29 february", received=datetime(2035, 12, 31, tzinfo=UTC))
def test_any_text_gets_a_consistent_reading(text, received):
    """Never raises; score in range, label from the score, confidence in 0..1, OPT_OUT negative."""
    result = analyse(text, received)
    assert -100 <= result.score <= 100
    assert 0 <= result.confidence <= 1
    assert result.label is label_for_score(result.score)
    if OPT_OUT in result.triggers:
        assert result.label is NEGATIVE
    until = result.out_of_office_until
    if until is not None:
        assert AWAY in result.triggers
        assert until.tzinfo is UTC
        assert until.astimezone(BUCHAREST).hour == 9
        assert until.astimezone(BUCHAREST).date() >= received.astimezone(BUCHAREST).date()


@given(
    keyword=st.sampled_from(OPT_OUT_KEYWORDS),
    spelling=st.sampled_from([str, str.upper, str.lower, strip_romanian, cedilla]),
    before=any_text,
    after=any_text,
    left=spacing,
    right=spacing,
)
def test_any_text_holding_an_opt_out_keyword_opts_out(
    *, keyword, spelling, before, after, left, right
):
    """A keyword anywhere, in any case, with or without diacritics, always means OPT_OUT."""
    result = analyse(f"{before}{left}{spelling(keyword)}{right}{after}")
    assert OPT_OUT in result.triggers
    assert result.label is NEGATIVE


# --- The shipped corpus ---------------------------------------------------------------------

# What each kind of corpus reply must be read as: a label, or a trigger among the triggers.
EXPECTED: dict[ReplyKind, SentimentLabel | ReplyTrigger] = {
    ReplyKind.POSITIVE: POSITIVE,
    ReplyKind.NEUTRAL: NEUTRAL,
    ReplyKind.NEGATIVE: NEGATIVE,
    ReplyKind.OPT_OUT: OPT_OUT,
    ReplyKind.COMPLAINT: COMPLAINT,
    ReplyKind.OUT_OF_OFFICE: AWAY,
    ReplyKind.WRONG_PERSON: WRONG,
}
# A reply read as one of these is handled as such, whatever its label says.
HANDLING = frozenset({OPT_OUT, COMPLAINT, AWAY, WRONG})


def reading(result: ReplyAnalysis, kind: ReplyKind) -> str:
    """What the analyser made of a reply, in the corpus's terms, to compare with its kind."""
    expected = EXPECTED[kind]
    if isinstance(expected, ReplyTrigger) and expected in result.triggers:
        return kind.value
    handled = sorted(t.value for t in result.triggers & HANDLING)
    return "+".join(handled) if handled else result.label.value


def test_the_shipped_corpus_is_read_as_labelled():
    """At least 90% of corpus replies read as their kind, and every opt-out as an opt-out."""
    assert set(EXPECTED) == set(ReplyKind)
    raw = files("cerniq_outreach.data").joinpath("replies.jsonl").read_text(encoding="utf-8")
    rows = [json.loads(line) for line in raw.splitlines() if line.strip()]
    confusion: Counter[tuple[str, str]] = Counter()
    misses = []
    for row in rows:
        kind = ReplyKind(row["kind"])
        got = reading(analyse(row["text"]), kind)
        confusion[kind.value, got] += 1
        if got != kind.value:
            misses.append(f"  {kind.value:>13} read as {got:<13} {row['text']!r}")
    agreed = sum(n for (kind, got), n in confusion.items() if kind == got)
    opt_outs = [r for r in rows if r["kind"] == ReplyKind.OPT_OUT]
    summary = "\n".join(
        [f"agreement {agreed}/{len(rows)}", "kind -> read as: count"]
        + [f"  {kind} -> {got}: {n}" for (kind, got), n in sorted(confusion.items())]
        + ["misses:", *misses]
    )
    assert len(opt_outs) >= 5, summary
    assert confusion[ReplyKind.OPT_OUT.value, ReplyKind.OPT_OUT.value] == len(opt_outs), summary
    assert agreed >= 0.9 * len(rows), summary
