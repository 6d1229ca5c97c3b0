"""The sandbox's WhatsApp: the `WhatsAppChannel` port, answering as TimelinesAI would.

A send is counted, then refused when the number cannot be on WhatsApp (malformed, in the
reserved range `INVALID_PHONE_PREFIX`, or one of the seeded share of numbers that are not
registered; a number keeps its fate for the whole run). An accepted send gets a message uid
and a fate: delivered, read, replied, each at a seeded delay after the step before.

Reads (`message`, `status_history`, `chat_messages`) answer with what the webhooks have said
so far, so confirming an inbound message before acting on it works as in live mode.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from cerniq_outreach.adapters.channels.sandbox_core import SandboxCore, Webhook
from cerniq_outreach.adapters.channels.sandbox_webhooks import (
    digest_key,
    shared_secret_webhook,
    timelinesai_message,
    timelinesai_time,
)
from cerniq_outreach.application.channels import (
    InvalidRecipient,
    RequestRejected,
    SendResult,
    StatusChange,
    WhatsAppAccount,
    WhatsAppMessage,
)

SANDBOX: Final = "sandbox"
PROVIDER: Final = "timelinesai"
INVALID_PHONE_PREFIX: Final = "+407000"
"""Numbers starting so are never on WhatsApp in the sandbox (Romanian 0700 is premium rate)."""
STATUS_EVENT: Final = "message:status:updated"
"""*Unconfirmed* event type of a delivery or read report (see `timelinesai_message`)."""
_E164: Final = re.compile(r"\+[1-9][0-9]{7,14}")
_CHAT_PAGE: Final = 50


def whatsapp_key(to_phone: str, text: str) -> str:
    """The send-count key of a WhatsApp message: the same text to the same person.

    The port carries no message id, and rendering is deterministic per (lead, step, template
    version), so sending one journey message twice means the same text to the same number.
    """
    return f"whatsapp:{to_phone}:{digest_key(text)}"


@dataclass(slots=True)
class _Message:
    uid: str
    chat_id: str
    from_me: bool
    text: str
    at: datetime
    history: list[StatusChange] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Chat:
    chat_id: str
    our_phone: str
    lead_phone: str


class SandboxWhatsApp:
    """The `WhatsAppChannel` port in the sandbox."""

    def __init__(self, core: SandboxCore) -> None:
        self._core = core
        self._messages: dict[str, _Message] = {}
        self._chats: dict[str, _Chat] = {}
        self._chat_of: dict[tuple[str, str], _Chat] = {}
        self._chat_uids: dict[str, list[str]] = {}
        self._accounts: dict[str, None] = {}  # insertion-ordered set

    def connect(self, phone: str) -> None:
        """Link a pool number (sending from a number links it too)."""
        with self._core.lock:
            self._accounts[phone] = None

    def is_on_whatsapp(self, phone: str) -> bool:
        """Whether the sandbox treats `phone` as a WhatsApp user (stable for a seed)."""
        if not _E164.fullmatch(phone) or phone.startswith(INVALID_PHONE_PREFIX):
            return False
        share = self._core.rates.whatsapp.not_on_whatsapp
        return self._core.rng("whatsapp-registered", phone).random() >= share

    def send_to_phone(
        self, *, from_phone: str, to_phone: str, text: str, label: str | None = None
    ) -> SendResult:
        """Send `text` to `to_phone` from the pool number `from_phone`."""
        del label  # a chat label changes nothing in the sandbox
        key = whatsapp_key(to_phone, text)
        with self._core.lock:
            ordinal = self._core.count_send(key)
            if not _E164.fullmatch(from_phone):
                raise RequestRejected(SANDBOX, "the sending number is not in E.164 form")
            if not self.is_on_whatsapp(to_phone):
                raise InvalidRecipient(SANDBOX, "the phone number is not registered on WhatsApp")
            self._accounts[from_phone] = None
            chat = self._chat(from_phone, to_phone)
            return self._send(chat, text, key, ordinal)

    def send_to_chat(self, *, chat_id: str, text: str) -> SendResult:
        """Send `text` into a chat the sandbox knows (it goes out from the chat's number)."""
        with self._core.lock:
            chat = self._chats.get(chat_id)
            if chat is None:
                raise RequestRejected(SANDBOX, "chat not found")
            key = whatsapp_key(chat.lead_phone, text)
            return self._send(chat, text, key, self._core.count_send(key))

    def message(self, message_uid: str) -> WhatsAppMessage:
        """One message as webhooks have described it so far."""
        with self._core.lock:
            found = self._messages.get(message_uid)
            if found is None:
                raise RequestRejected(SANDBOX, "message not found")
            return _to_port(found)

    def status_history(self, message_uid: str) -> list[StatusChange]:
        """A message's statuses so far, oldest first."""
        with self._core.lock:
            found = self._messages.get(message_uid)
            if found is None:
                raise RequestRejected(SANDBOX, "message not found")
            return list(found.history)

    def chat_messages(self, chat_id: str) -> list[WhatsAppMessage]:
        """The chat's most recent messages, oldest first."""
        with self._core.lock:
            if chat_id not in self._chats:
                raise RequestRejected(SANDBOX, "chat not found")
            uids = self._chat_uids[chat_id][-_CHAT_PAGE:]
            return [_to_port(self._messages[uid]) for uid in uids]

    def find_sent(self, *, from_phone: str, to_phone: str, text: str) -> SendResult | None:
        """Our message with `text` in the chat between the two numbers, if there is one."""
        with self._core.lock:
            chat = self._chat_of.get((from_phone, to_phone))
            if chat is None:
                return None
            for uid in self._chat_uids[chat.chat_id]:
                found = self._messages[uid]
                if found.from_me and found.text == text:
                    return SendResult(provider=SANDBOX, external_id=uid)
            return None

    def accounts(self) -> list[WhatsAppAccount]:
        """Every linked number, connected."""
        with self._core.lock:
            return [
                WhatsAppAccount(
                    account_id=f"{phone.removeprefix('+')}@s.whatsapp.net",
                    phone=phone,
                    status="connected",
                )
                for phone in self._accounts
            ]

    # --- internals (called with the lock held) ------------------------------------------------

    def _chat(self, our_phone: str, lead_phone: str) -> _Chat:
        chat = self._chat_of.get((our_phone, lead_phone))
        if chat is None:
            # TimelinesAI chat ids are numbers; derived from the pair, stable for a seed.
            number = int(self._core.make_id("chat", our_phone, lead_phone)[:8], 16)
            chat = _Chat(str(10_000_000 + number % 90_000_000), our_phone, lead_phone)
            self._chat_of[our_phone, lead_phone] = chat
            self._chats[chat.chat_id] = chat
            self._chat_uids[chat.chat_id] = []
        return chat

    def _record(self, chat: _Chat, uid: str, text: str, at: datetime, *, from_me: bool) -> None:
        status = "sent" if from_me else "received"
        history = [StatusChange(status=status, timestamp=timelinesai_time(at))]
        self._messages[uid] = _Message(uid, chat.chat_id, from_me, text, at, history)
        self._chat_uids[chat.chat_id].append(uid)

    def _send(self, chat: _Chat, text: str, key: str, ordinal: int) -> SendResult:
        core = self._core
        rates = core.rates.whatsapp
        now = core.clock.now()
        uid = core.make_id("timelinesai", key, str(ordinal))
        self._record(chat, uid, text, now, from_me=True)
        # Every draw is made whatever the outcome, in a fixed order, so changing one rate does
        # not reshuffle the other outcomes of the same message.
        rng = core.rng("whatsapp", key, str(ordinal))
        delivered = rng.random() < rates.delivered
        read = rng.random() < rates.read
        replied = rng.random() < rates.replied
        delivered_at = now + rates.delivery_delay.draw(rng)
        read_at = delivered_at + rates.read_delay.draw(rng)
        replied_at = read_at + rates.reply_delay.draw(rng)
        reply = core.corpus.pick(rates.reply_mix.choose(rng), rng)

        order = f"whatsapp:{uid}"
        if core.rates.echoes:
            core.schedule(now, order, lambda _at: self._echo(chat, uid, text, now))
        if delivered:
            core.schedule(
                delivered_at,
                order,
                lambda _at: self._status(chat, uid, "delivered", delivered_at),
            )
            if read:
                core.schedule(read_at, order, lambda _at: self._status(chat, uid, "read", read_at))
                if replied:
                    reply_uid = core.make_id("timelinesai-reply", key, str(ordinal))
                    core.schedule(
                        replied_at,
                        order,
                        lambda _at: self._reply(chat, reply_uid, reply.text, replied_at),
                    )
        return SendResult(provider=SANDBOX, external_id=uid)

    def _echo(self, chat: _Chat, uid: str, text: str, at: datetime) -> Webhook:
        return self._hook(
            timelinesai_message(
                "message:sent:new",
                at=at,
                uid=uid,
                chat_id=chat.chat_id,
                lead_phone=chat.lead_phone,
                our_phone=chat.our_phone,
                text=text,
                from_me=True,
            )
        )

    def _status(self, chat: _Chat, uid: str, status: str, at: datetime) -> Webhook:
        # Recorded when emitted, so reads never run ahead of what the webhooks said.
        with self._core.lock:
            message = self._messages[uid]
            message.history.append(StatusChange(status=status, timestamp=timelinesai_time(at)))
        return self._hook(
            timelinesai_message(
                STATUS_EVENT,
                at=at,
                uid=uid,
                chat_id=chat.chat_id,
                lead_phone=chat.lead_phone,
                our_phone=chat.our_phone,
                text=message.text,
                from_me=True,
                status=status,
            )
        )

    def _reply(self, chat: _Chat, uid: str, text: str, at: datetime) -> Webhook:
        with self._core.lock:
            self._record(chat, uid, text, at, from_me=False)
        return self._hook(
            timelinesai_message(
                "message:received:new",
                at=at,
                uid=uid,
                chat_id=chat.chat_id,
                lead_phone=chat.lead_phone,
                our_phone=chat.our_phone,
                text=text,
                from_me=False,
            )
        )

    def _hook(self, payload: dict[str, object]) -> Webhook:
        return shared_secret_webhook(PROVIDER, self._core.secrets.timelinesai, payload)


def _to_port(message: _Message) -> WhatsAppMessage:
    return WhatsAppMessage(
        uid=message.uid,
        chat_id=message.chat_id,
        status=message.history[-1].status,
        from_me=message.from_me,
        timestamp=timelinesai_time(message.at),
        text=message.text,
    )
