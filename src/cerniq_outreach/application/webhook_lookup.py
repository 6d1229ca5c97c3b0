"""`LeadLookup` over the read models: which journey a provider event belongs to.

Webhooks arrive before any tenant is known, so the lookup reads across tenants. On
PostgreSQL give it a read-model database of the `cerniq_follower` role (the application role
sees nothing without a tenant bound, by row-level security); SQLite has no roles.

Ways in, best first:
- ids we sent out ourselves (Resend tags, Instantly custom variables): tenant, lead, message;
- the provider's id of our message (`gold_communication_log.external_id`: a WhatsApp status
  report names the TimelinesAI message uid);
- the lead's phone (E.164, `gold_lead_journey.phone`), narrowed to the tenant whose pool holds
  the number that received the message (`wa_phone_numbers`);
- the lead's email (`gold_lead_journey.email`).

A phone or an address found in more than one tenant, with nothing to tell them apart, is
ambiguous: the event is reported unknown rather than written into the wrong tenant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from cerniq_outreach.application.projections.base import comparable
from cerniq_outreach.application.webhook_events import LeadRef, Locator

if TYPE_CHECKING:
    from cerniq_outreach.application.ports import ReadModelDatabase, SqlTx

_CANDIDATES: Final = 50  # more leads than this behind one phone or address: take the first

_BY_EXTERNAL_ID = """
SELECT tenant_id, lead_id, message_id FROM gold_communication_log
WHERE external_id = :external AND channel = :channel AND direction = 'OUTBOUND'
ORDER BY created_at DESC LIMIT 2
"""

_BY_EXTERNAL_ID_IN_LEAD = """
SELECT message_id FROM gold_communication_log
WHERE tenant_id = :tenant AND lead_id = :lead AND external_id = :external
    AND direction = 'OUTBOUND'
LIMIT 1
"""

_BY_PHONE = f"""
SELECT j.tenant_id, j.lead_id, j.last_contact_at, p.phone_number AS our_phone
FROM gold_lead_journey j
LEFT JOIN wa_phone_numbers p ON p.tenant_id = j.tenant_id AND p.id = j.assigned_phone_id
WHERE j.phone = :phone
LIMIT {_CANDIDATES}
"""  # noqa: S608 - a constant

_POOL_TENANTS = "SELECT tenant_id FROM wa_phone_numbers WHERE phone_number = :phone"

_BY_EMAIL = f"""
SELECT tenant_id, lead_id, last_contact_at FROM gold_lead_journey WHERE email = :email
LIMIT {_CANDIDATES}
"""  # noqa: S608 - a constant

_LATEST_SENT = """
SELECT message_id FROM gold_communication_log
WHERE tenant_id = :tenant AND lead_id = :lead AND direction = 'OUTBOUND'
    AND channel = :channel AND sent_at IS NOT NULL
ORDER BY sent_at DESC, stream_version DESC LIMIT 1
"""


class ReadModelLeadLookup:
    """LeadLookup on `gold_lead_journey`, `gold_communication_log` and `wa_phone_numbers`."""

    def __init__(self, read_models: ReadModelDatabase) -> None:
        self._db = read_models

    def find(self, locator: Locator, *, needs_message: bool) -> LeadRef | None:
        """The lead (and message) `locator` points at; None when unknown or ambiguous."""
        with self._db.transaction() as tx:
            lead = self._lead(tx, locator)
            if lead is None or not needs_message or lead.message_id is not None:
                return lead
            return LeadRef(
                tenant_id=lead.tenant_id,
                lead_id=lead.lead_id,
                message_id=self._message(tx, lead, locator),
            )

    def _lead(self, tx: SqlTx, loc: Locator) -> LeadRef | None:
        if loc.tenant_id and loc.lead_id:
            return LeadRef(tenant_id=loc.tenant_id, lead_id=loc.lead_id, message_id=loc.message_id)
        if loc.external_id is not None:
            rows = tx.fetchall(
                _BY_EXTERNAL_ID, {"external": loc.external_id, "channel": loc.channel.value}
            )
            if len(rows) == 1:
                row = rows[0]
                return LeadRef(
                    tenant_id=row["tenant_id"], lead_id=row["lead_id"], message_id=row["message_id"]
                )
        if loc.lead_phone is not None:
            return self._by_phone(tx, loc.lead_phone, loc.our_phone, loc.tenant_id)
        if loc.lead_email is not None:
            rows = tx.fetchall(_BY_EMAIL, {"email": loc.lead_email})
            return _choose(rows, loc.tenant_id)
        return None

    def _by_phone(
        self, tx: SqlTx, phone: str, our_phone: str | None, tenant_id: str | None
    ) -> LeadRef | None:
        rows = tx.fetchall(_BY_PHONE, {"phone": phone})
        if our_phone is not None and rows:
            # The lead whose sticky phone is the number written to answers first; else any
            # lead of a tenant whose pool holds that number.
            on_number = [r for r in rows if r["our_phone"] == our_phone]
            if on_number:
                return _choose(on_number, tenant_id)
            pools = {r["tenant_id"] for r in tx.fetchall(_POOL_TENANTS, {"phone": our_phone})}
            in_pool = [r for r in rows if r["tenant_id"] in pools]
            if in_pool:
                return _choose(in_pool, tenant_id)
        return _choose(rows, tenant_id)

    def _message(self, tx: SqlTx, lead: LeadRef, loc: Locator) -> str | None:
        params: dict[str, Any] = {"tenant": lead.tenant_id, "lead": lead.lead_id}
        if loc.external_id is not None:
            rows = tx.fetchall(_BY_EXTERNAL_ID_IN_LEAD, {**params, "external": loc.external_id})
            if rows:
                return str(rows[0]["message_id"])
        rows = tx.fetchall(_LATEST_SENT, {**params, "channel": loc.channel.value})
        return str(rows[0]["message_id"]) if rows else None


def _choose(rows: list[dict[str, Any]], tenant_id: str | None) -> LeadRef | None:
    """The most recently contacted candidate, if every candidate is of one tenant."""
    if tenant_id is not None:
        rows = [r for r in rows if r["tenant_id"] == tenant_id]
    if not rows or len({r["tenant_id"] for r in rows}) > 1:
        return None
    # comparable(): PostgreSQL returns datetimes, SQLite canonical ISO text; both sort as text.
    best = max(
        rows,
        key=lambda r: (r["last_contact_at"] is not None, comparable(r["last_contact_at"]) or ""),
    )
    return LeadRef(tenant_id=best["tenant_id"], lead_id=best["lead_id"])
