"""The three providers' endpoints, following the request and reply shapes of `providers.md`.

Each handler takes the control object, the method, the path below the provider's prefix, the
headers and the decoded JSON body, and returns `(status, body)`. They run under the control's
lock, so the test thread always reads a consistent state.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import msgspec

from emulator.control import Control

Reply = tuple[int, Any]

_NOT_ON_WHATSAPP = {"status": "error", "message": "Phone number is not registered on WhatsApp"}


def _ok(data: Any) -> Reply:
    return 200, {"status": "ok", "data": data}


def timelinesai(  # noqa: C901, PLR0911  # one case per endpoint reads as a route table
    control: Control, method: str, path: str, _headers: dict[str, str], body: Any
) -> Reply:
    """TimelinesAI: sends, message details and history, chat history, accounts."""
    match method, path.strip("/").split("/"):
        case "POST", ["messages"]:
            if not isinstance(body, dict) or "phone" not in body or "text" not in body:
                return 400, {"status": "error", "message": "phone and text are required"}
            if body["phone"] in control.invalid_phones:
                return 400, _NOT_ON_WHATSAPP
            return _send(control, chat_id=f"chat-{body['phone'].lstrip('+')}", body=body)
        case "POST", ["chats", chat_id, "messages"]:
            return _send(control, chat_id=chat_id, body=body)
        case "GET", ["messages", uid]:
            message = control.whatsapp_messages.get(uid)
            if message is None:
                return 404, {"status": "error", "message": "Message not found"}
            return _ok(message)
        case "GET", ["messages", uid, "status_history"]:
            if uid not in control.whatsapp_messages:
                return 404, {"status": "error", "message": "Message not found"}
            stamp = control.whatsapp_messages[uid]["timestamp"]
            return _ok([{"status": s, "timestamp": stamp} for s in ("Sent", "Delivered")])
        case "GET", ["chats"]:
            # One page holding every chat (filtered by `phone` when given).
            chats: dict[str, dict[str, Any]] = {}
            for sent in control.whatsapp_messages.values():
                body_of = control.whatsapp_bodies.get(sent["message_uid"], {})
                chats[sent["chat_id"]] = {
                    "id": sent["chat_id"],
                    "phone": body_of.get("phone"),
                    "whatsapp_account_phone": body_of.get("whatsapp_account_phone"),
                }
            wanted = _headers.get("x-query-phone")
            listed = [c for c in chats.values() if wanted is None or c["phone"] == wanted]
            return _ok({"chats": listed, "has_more_pages": False})
        case "GET", ["chats", chat_id, "messages"]:
            found = [m for m in control.whatsapp_messages.values() if m["chat_id"] == chat_id]
            return _ok({"messages": found, "has_more_pages": False})
        case "GET", ["whatsapp_accounts"]:
            accounts = [
                {"id": f"{phone.lstrip('+')}@s.whatsapp.net", "phone": phone, "status": status}
                for phone, status in control.whatsapp_accounts.items()
            ]
            return _ok({"whatsapp_accounts": accounts})
    return 404, {"status": "error", "message": "Not found"}


def _send(control: Control, *, chat_id: str, body: dict[str, Any]) -> Reply:
    uid = str(uuid.uuid4())
    message = {
        "message_uid": uid,
        "chat_id": chat_id,
        "status": "Sent",
        "from_me": True,
        "timestamp": "2025-03-04 10:00:00 +0200",
        "text": body.get("text"),
    }
    control.whatsapp_messages[uid] = message
    control.whatsapp_bodies[uid] = body
    control.whatsapp_sent.append(body)
    return _ok({"message_uid": uid})


def instantly(  # noqa: C901, PLR0911  # one case per endpoint reads as a route table
    control: Control, method: str, path: str, _headers: dict[str, str], body: Any
) -> Reply:
    """Instantly v2: leads, block list, campaigns."""
    match method, path.strip("/").removeprefix("api/v2/").split("/"):
        case "POST", ["leads", "add"]:
            return _add_leads(control, body)
        case "POST", ["leads", "list"]:
            search = str(body.get("search", "")).casefold()
            items = [
                lead
                for lead in control.leads.values()
                if lead["campaign"] == body.get("campaign") and search in lead["email"].casefold()
            ]
            return 200, {"items": items[: body.get("limit", 100)], "next_starting_after": None}
        case ("PATCH" | "DELETE") as verb, ["leads", lead_id]:
            if lead_id not in control.leads:
                return 404, {"statusCode": 404, "error": "Not Found", "message": "Lead not found"}
            if verb == "DELETE":
                return 200, control.leads.pop(lead_id)
            control.leads[lead_id].update(body)
            return 200, control.leads[lead_id]
        case "POST", ["block-lists-entries"]:
            control.block_list.append(body["bl_value"])
            return 200, {"id": str(uuid.uuid4()), "bl_value": body["bl_value"]}
        case "POST", ["block-lists-entries", "bulk-create"]:
            control.block_list.extend(body["bl_values"])
            return 200, {"created_count": len(body["bl_values"])}
        case "GET", ["campaigns"]:
            # Paged with `limit` (the adapter's credentials check asks for one).
            items = list(control.campaigns.values())[:1]
            return 200, {"items": items, "next_starting_after": None}
        case "POST", ["campaigns"]:
            return _create_campaign(control, body)
        case "POST", ["campaigns", campaign_id, "activate"]:
            if campaign_id not in control.campaigns:
                return 404, {"statusCode": 404, "error": "Not Found", "message": "No campaign"}
            control.campaigns[campaign_id]["status"] = 1
            return 200, control.campaigns[campaign_id]
    return 404, {"statusCode": 404, "error": "Not Found", "message": "Route not found"}


def _add_leads(control: Control, body: Any) -> Reply:
    leads = body.get("leads") if isinstance(body, dict) else None
    if not isinstance(leads, list) or not 1 <= len(leads) <= 1000:
        return 400, {"statusCode": 400, "error": "Bad Request", "message": "leads: 1-1000 items"}
    campaign = body.get("campaign_id")
    uploaded = blocked = skipped = 0
    for lead in leads:
        if any(
            not isinstance(v, str | int | float | bool)
            for v in lead.get("custom_variables", {}).values()
        ):
            return 400, {"statusCode": 400, "error": "Bad Request", "message": "flat values only"}
        if lead["email"] in control.block_list:
            blocked += 1
        elif body.get("skip_if_in_campaign") and any(
            existing["email"] == lead["email"] and existing["campaign"] == campaign
            for existing in control.leads.values()
        ):
            skipped += 1
        else:
            lead_id = str(uuid.uuid4())
            control.leads[lead_id] = {**lead, "id": lead_id, "campaign": campaign, "status": 1}
            uploaded += 1
    return 200, {
        "status": "success",
        "total_sent": len(leads),
        "leads_uploaded": uploaded,
        "in_blocklist": blocked,
        "duplicated_leads": 0,
        "skipped_count": skipped,
    }


def _create_campaign(control: Control, body: Any) -> Reply:
    try:
        schedule = body["campaign_schedule"]["schedules"][0]
        valid = set(schedule["timing"]) == {"from", "to"} and set(schedule["days"]) <= set(
            "0123456"
        )
        valid = valid and isinstance(schedule["timezone"], str)
    except (KeyError, IndexError, TypeError):
        valid = False
    if not valid:
        return 400, {"statusCode": 400, "error": "Bad Request", "message": "campaign_schedule"}
    campaign_id = str(uuid.uuid4())
    control.campaigns[campaign_id] = {**body, "id": campaign_id, "status": 0}
    return 200, control.campaigns[campaign_id]


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def resend(control: Control, method: str, path: str, headers: dict[str, str], body: Any) -> Reply:
    """Resend: single and batch sends, with idempotency keys kept as Resend keeps them.

    `GET /domains` lists one verified sending domain (the credentials check reads it).
    """
    if (method, path) == ("GET", "/domains"):
        domain = {"id": "d-1", "name": "cerniq.ro", "status": "verified", "region": "eu-west-1"}
        return 200, {"object": "list", "data": [domain]}
    if method != "POST" or path not in {"/emails", "/emails/batch"}:
        return 404, {"statusCode": 404, "name": "not_found", "message": "Route not found"}
    key = headers.get("idempotency-key")
    fingerprint = msgspec.json.encode(body)
    if key is not None and key in control.idempotent_replies:
        first_fingerprint, status, reply = control.idempotent_replies[key]
        if first_fingerprint != fingerprint:
            return 409, {
                "statusCode": 409,
                "name": "invalid_idempotent_request",
                "message": "Same idempotency key used with a different request payload",
            }
        return status, reply
    emails = body if path == "/emails/batch" else [body]
    status, reply = _send_emails(control, emails, batch=path == "/emails/batch")
    if key is not None:
        control.idempotent_replies[key] = (fingerprint, status, reply)
    return status, reply


def _send_emails(control: Control, emails: Any, *, batch: bool) -> Reply:
    if not isinstance(emails, list) or not 1 <= len(emails) <= 100:
        return 422, {"statusCode": 422, "name": "validation_error", "message": "1-100 emails"}
    for email in emails:
        for to in email.get("to", []):
            if to in control.invalid_emails or not _EMAIL.match(to):
                return 422, {
                    "statusCode": 422,
                    "name": "validation_error",
                    "message": f"Invalid `to` field. Not a deliverable address: {to}",
                }
    ids = [str(uuid.uuid4()) for _ in emails]
    control.emails_sent.extend({**email, "id": i} for email, i in zip(emails, ids, strict=True))
    if batch:
        return 200, {"data": [{"id": i} for i in ids]}
    return 200, {"id": ids[0]}


def auth_failure(provider: str) -> Reply:
    """What each provider answers to a missing, wrong or revoked key."""
    if provider == "timelinesai":
        return 401, {"status": "error", "message": "Invalid or expired token"}
    if provider == "instantly":
        return 401, {"statusCode": 401, "error": "Unauthorized", "message": "Invalid API key"}
    return 403, {"statusCode": 403, "name": "invalid_api_key", "message": "API key is invalid"}


HANDLERS = {"timelinesai": timelinesai, "instantly": instantly, "resend": resend}
