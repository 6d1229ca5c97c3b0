"""Domain errors: a command the rules refuse. Raising one means nothing is appended."""


class DomainError(Exception):
    """A command broke a business rule; `code` is stable and machine-readable."""

    code = "DOMAIN_ERROR"


class IllegalTransition(DomainError):
    """The transition table does not allow this change of state."""

    code = "ILLEGAL_TRANSITION"


class NotEnrolled(DomainError):
    """The journey has not started: only enrolment is possible."""

    code = "NOT_ENROLLED"


class AlreadyEnrolled(DomainError):
    """The lead already has a journey."""

    code = "ALREADY_ENROLLED"


class OutboundRefused(DomainError):
    """No message may go out now (opt-out, pause, human control, review, terminal state)."""

    code = "OUTBOUND_REFUSED"


class DuplicateMessage(DomainError):
    """The message id or the (sequence, step) was queued already."""

    code = "DUPLICATE_MESSAGE"


class UnknownMessage(DomainError):
    """A provider event or send names a message this journey never queued."""

    code = "UNKNOWN_MESSAGE"


class InvalidCommand(DomainError):
    """A command's values are out of range or inconsistent."""

    code = "INVALID_COMMAND"


class ReviewError(DomainError):
    """A review was resolved twice, or does not exist."""

    code = "REVIEW_ERROR"


class ControlError(DomainError):
    """Take-over or release of human control does not fit the current control."""

    code = "CONTROL_ERROR"


class TemplateError(DomainError):
    """A template is malformed or cannot be rendered (missing required variable)."""

    code = "TEMPLATE_ERROR"


class SequenceError(DomainError):
    """A sequence definition breaks its rules (duplicate step numbers, negative delays)."""

    code = "SEQUENCE_ERROR"


class ConfigurationError(DomainError):
    """A policy (business hours, ramp, consent) was configured with impossible values."""

    code = "CONFIGURATION_ERROR"


class UnknownPhone(DomainError):
    """A command names a phone that is not in the tenant's pool."""

    code = "UNKNOWN_PHONE"


class PhoneAlreadyInPool(DomainError):
    """The number is in the tenant's pool already (a number is registered once per tenant)."""

    code = "PHONE_ALREADY_IN_POOL"
