"""Sending notices by email and the NHS App through a notifier shaped like GOV.UK Notify.

:class:`Notifier` has the calls of Notify's Python client that the roll-out uses
(``send_email_notification``, ``send_precompiled_letter_notification``,
``get_notification_by_id``), plus ``send_app_message`` for the NHS App. A production
deployment passes Notify's own client; the demo writes every message to its outbox folder.
Notify's delivery statuses map to a notice's status with :func:`notice_status`.
"""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from confide.common.clock import utcnow
from confide.common.secrets import write_secret
from confide.rollout.model import NoticeStatus

# GOV.UK Notify statuses → a notice's status (None: still on its way).
NOTIFY_STATUSES: dict[str, NoticeStatus | None] = {
    "created": None,
    "sending": None,
    "pending": None,
    "accepted": None,
    "received": NoticeStatus.DELIVERED,
    "delivered": NoticeStatus.DELIVERED,
    "permanent-failure": NoticeStatus.UNDELIVERABLE,
    "temporary-failure": None,
    "technical-failure": None,
    "validation-failed": NoticeStatus.UNDELIVERABLE,
    "returned-letter": NoticeStatus.RETURNED,
}


def notice_status(notify_status: str) -> NoticeStatus | None:
    return NOTIFY_STATUSES.get(notify_status)


class Notifier(Protocol):
    def send_email_notification(
        self, email_address: str, template_id: str, personalisation: dict[str, Any],
        reference: str | None = None,
    ) -> dict[str, Any]: ...  # fmt: skip

    def send_precompiled_letter_notification(
        self, reference: str, pdf_file: BinaryIO
    ) -> dict[str, Any]: ...

    def send_app_message(
        self, nhs_number: str, template_id: str, personalisation: dict[str, Any],
        reference: str | None = None,
    ) -> dict[str, Any]: ...  # fmt: skip

    def get_notification_by_id(self, notification_id: str) -> dict[str, Any]: ...


def _mask_email(address: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


class OutboxNotifier:
    """The demo's notifier: each message a JSON file in the outbox (destinations masked)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _write(self, message: dict[str, Any]) -> dict[str, Any]:
        ident = secrets.token_hex(16)
        now = utcnow()
        message = {"id": ident, "status": "delivered", "created_at": now.isoformat(), **message}
        stamp = now.strftime("%Y%m%dT%H%M%S%fZ")
        write_secret(self.folder / f"{stamp}-{ident[:8]}.json", json.dumps(message).encode())
        return {"id": ident, "reference": message.get("reference")}

    def send_email_notification(
        self, email_address: str, template_id: str, personalisation: dict[str, Any],
        reference: str | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        return self._write(
            {
                "kind": "rollout_notice",
                "channel": "email",
                "to": _mask_email(email_address),
                "template_id": template_id,
                "reference": reference,
                "text": personalisation.get("body", ""),
            }
        )

    def send_app_message(
        self, nhs_number: str, template_id: str, personalisation: dict[str, Any],
        reference: str | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        return self._write(
            {
                "kind": "rollout_notice",
                "channel": "nhs_app",
                "to": "NHS App user",
                "template_id": template_id,
                "reference": reference,
                "text": personalisation.get("body", ""),
            }
        )

    def send_precompiled_letter_notification(
        self, reference: str, pdf_file: BinaryIO
    ) -> dict[str, Any]:
        data = pdf_file.read()
        return self._write(
            {
                "kind": "rollout_notice",
                "channel": "letter",
                "reference": reference,
                "pdf_base64_bytes": len(base64.b64encode(data)),
            }
        )

    def get_notification_by_id(self, notification_id: str) -> dict[str, Any]:
        for path in self.folder.glob("*.json"):
            message = json.loads(path.read_text())
            if message.get("id") == notification_id:
                return message
        raise KeyError(notification_id)
