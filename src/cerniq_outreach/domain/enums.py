"""The closed vocabularies of the business: states, channels, statuses, reasons.

Values are the strings stored in events and shown in the API; never rename a value.
"""

from enum import StrEnum


class JourneyState(StrEnum):
    """Where a lead stands in its outreach journey."""

    COLD = "COLD"
    CONTACTED_WA = "CONTACTED_WA"
    CONTACTED_EMAIL = "CONTACTED_EMAIL"
    WARM_REPLY = "WARM_REPLY"
    NEGOTIATION = "NEGOTIATION"
    CONVERTED = "CONVERTED"
    DEAD = "DEAD"
    PAUSED = "PAUSED"


TERMINAL_STATES = frozenset({JourneyState.CONVERTED, JourneyState.DEAD})


class Channel(StrEnum):
    """A way of reaching a lead."""

    WHATSAPP = "WHATSAPP"
    EMAIL_COLD = "EMAIL_COLD"
    EMAIL_WARM = "EMAIL_WARM"
    PHONE = "PHONE"
    MANUAL = "MANUAL"


class OptOutScope(StrEnum):
    """What an opt-out covers: one family of channels, or everything."""

    WHATSAPP = "WHATSAPP"
    EMAIL = "EMAIL"
    ALL = "ALL"


def opt_out_scope_of(channel: Channel) -> OptOutScope | None:
    """The opt-out scope that silences `channel` (None: only an ALL opt-out does)."""
    if channel is Channel.WHATSAPP:
        return OptOutScope.WHATSAPP
    if channel in (Channel.EMAIL_COLD, Channel.EMAIL_WARM):
        return OptOutScope.EMAIL
    return None


class MessageStatus(StrEnum):
    """The furthest known status of one outbound message."""

    QUEUED = "QUEUED"
    SENT = "SENT"
    DELIVERED = "DELIVERED"
    READ = "READ"
    REPLIED = "REPLIED"
    BOUNCED = "BOUNCED"
    FAILED = "FAILED"
    OPENED = "OPENED"
    CLICKED = "CLICKED"
    CANCELLED = "CANCELLED"


class BounceKind(StrEnum):
    """Hard bounces mean the address is dead; soft ones may pass on a retry."""

    HARD = "hard"
    SOFT = "soft"


class SentimentLabel(StrEnum):
    """Coarse sentiment of a reply."""

    POSITIVE = "positive"
    NEUTRAL = "neutral"
    NEGATIVE = "negative"


class ReplyTrigger(StrEnum):
    """Signals read from a reply that change what happens next."""

    OPT_OUT = "OPT_OUT"
    COMPLAINT = "COMPLAINT"
    BUYING_SIGNAL = "BUYING_SIGNAL"
    OUT_OF_OFFICE = "OUT_OF_OFFICE"
    WRONG_PERSON = "WRONG_PERSON"


class ReviewReason(StrEnum):
    """Why a journey was handed to a human."""

    NEGATIVE_SENTIMENT = "NEGATIVE_SENTIMENT"
    KEYWORD_TRIGGER = "KEYWORD_TRIGGER"
    BOUNCE_DETECTED = "BOUNCE_DETECTED"
    COMPLAINT = "COMPLAINT"
    MANUAL_FLAG = "MANUAL_FLAG"
    AI_UNCERTAIN = "AI_UNCERTAIN"


class Priority(StrEnum):
    """Urgency of a review item; each has an SLA."""

    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    URGENT = "URGENT"


class ReviewResolution(StrEnum):
    """How a human closed a review item."""

    HANDED_BACK = "HANDED_BACK"
    TAKEN_OVER = "TAKEN_OVER"
    MOVED_TO_NEGOTIATION = "MOVED_TO_NEGOTIATION"
    CONVERTED = "CONVERTED"
    MARKED_DEAD = "MARKED_DEAD"
    DISMISSED = "DISMISSED"


class PhoneStatus(StrEnum):
    """Health of a WhatsApp number in the pool; only ACTIVE sends."""

    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    OFFLINE = "OFFLINE"
    BANNED = "BANNED"
    RECONNECTING = "RECONNECTING"
    QUARANTINE = "QUARANTINE"


class QuotaRefusal(StrEnum):
    """Why the quota guardian said no."""

    PHONE_NOT_ACTIVE = "PHONE_NOT_ACTIVE"
    OUTSIDE_BUSINESS_HOURS = "OUTSIDE_BUSINESS_HOURS"
    QUOTA_EXCEEDED = "QUOTA_EXCEEDED"
    WARMUP_LIMIT = "WARMUP_LIMIT"
    # The guardian could not be asked (Redis down): it fails closed, never open.
    GUARDIAN_UNAVAILABLE = "GUARDIAN_UNAVAILABLE"


class LawfulBasis(StrEnum):
    """The GDPR / ePrivacy basis on which a lead may be contacted on a channel."""

    CONSENT = "CONSENT"
    EXISTING_CUSTOMER = "EXISTING_CUSTOMER"
    LEGITIMATE_INTEREST = "LEGITIMATE_INTEREST"
