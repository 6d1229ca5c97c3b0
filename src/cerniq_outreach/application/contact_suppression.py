"""Suppression across leads: an objection, or a dead address, follows the person.

A person may stand behind more than one lead of a tenant (imported twice with a new phone,
listed under two companies). When one of those leads objected on a channel family, or its
address proved dead (hard bounce, not on WhatsApp), no other lead with the same phone or
email is written to on that family: the scheduler records it on the lead as an `OptedOut`
whose source names the suppression, and an import refuses a contact that objected to
everything. The tenant's own suppression list (imported phones, addresses, whole domains)
arrives with issue #9 and is checked in the same place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from cerniq_outreach.domain.enums import OptOutScope

if TYPE_CHECKING:
    from cerniq_outreach.application.ports import ReadModelDatabase
    from cerniq_outreach.domain.events import Company

_COLUMNS: Final = """lead_id, phone, email, opted_out_whatsapp, opted_out_email, opted_out_all,
    whatsapp_invalid, email_invalid"""
# Two lookups, each served by its index (an OR of the two would scan the tenant's leads).
_SAME_PHONE: Final = f"""
SELECT {_COLUMNS} FROM gold_lead_journey
WHERE phone = :phone AND tenant_id = :tenant AND lead_id <> :lead LIMIT 50
"""  # noqa: S608 - constant column list
_SAME_EMAIL: Final = f"""
SELECT {_COLUMNS} FROM gold_lead_journey
WHERE email = :email AND tenant_id = :tenant AND lead_id <> :lead LIMIT 50
"""  # noqa: S608 - constant column list


class ContactSuppression:
    """Which channel families other leads of the same person closed, and why."""

    def __init__(self, read_models: ReadModelDatabase) -> None:
        self._db = read_models

    def closed(self, tenant_id: str, lead_id: str, company: Company) -> dict[OptOutScope, str]:
        """Channel families closed for this contact by other leads, with the reason.

        `OptOutScope.ALL` is present when the person objected to everything.
        """
        if not company.phone and not company.email:
            return {}
        params = {
            "tenant": tenant_id,
            "lead": lead_id,
            "phone": company.phone,
            "email": company.email,
        }
        rows: list[dict[str, Any]] = []
        with self._db.transaction(tenant_id) as tx:
            if company.phone:
                rows += tx.fetchall(_SAME_PHONE, params)
            if company.email:
                rows += tx.fetchall(_SAME_EMAIL, params)
        closed: dict[OptOutScope, str] = {}
        for row in rows:
            other = row["lead_id"]
            same_phone = bool(company.phone) and row["phone"] == company.phone
            same_email = bool(company.email) and row["email"] == company.email
            if row["opted_out_all"]:
                closed.setdefault(OptOutScope.ALL, f"objected to all contact (lead {other})")
            if same_phone and (row["opted_out_whatsapp"] or row["opted_out_all"]):
                closed.setdefault(OptOutScope.WHATSAPP, f"objected on WhatsApp (lead {other})")
            elif same_phone and row["whatsapp_invalid"]:
                closed.setdefault(OptOutScope.WHATSAPP, f"number not on WhatsApp (lead {other})")
            if same_email and (row["opted_out_email"] or row["opted_out_all"]):
                closed.setdefault(OptOutScope.EMAIL, f"objected to email (lead {other})")
            elif same_email and row["email_invalid"]:
                closed.setdefault(OptOutScope.EMAIL, f"address hard-bounced (lead {other})")
        return closed
