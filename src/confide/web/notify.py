"""Sending people messages (one-time codes, "your choices changed") through GOV.UK Notify.

The interface is Notify's own: an email or a text message made from a template the service
keeps in Notify, filled with ``personalisation``. ``NotifyClient`` is a real HTTP client for
the Notify API (v2, JWT signed with the API key's secret); it is used when
``CONFIDE_NOTIFY_API_KEY`` and the template ids are set. Without them a served app that is not
the demo cannot deliver codes, and ``WithheldOutbox`` records that a message was due with the
code withheld: a code is never written in plain text outside the demo.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import httpx

from confide.choices.identity import mask
from confide.common.clock import utcnow
from confide.common.errors import ConfideError
from confide.common.secrets import write_secret
from confide.web.notices import notice_text

log = logging.getLogger("confide.notify")

NOTIFY_URL = "https://api.notifications.service.gov.uk"
ENV = {
    "api_key": "CONFIDE_NOTIFY_API_KEY",
    "code_email": "CONFIDE_NOTIFY_CODE_EMAIL_TEMPLATE",
    "code_sms": "CONFIDE_NOTIFY_CODE_SMS_TEMPLATE",
    "change_email": "CONFIDE_NOTIFY_CHANGE_EMAIL_TEMPLATE",
    "change_sms": "CONFIDE_NOTIFY_CHANGE_SMS_TEMPLATE",
    "base_url": "CONFIDE_NOTIFY_URL",
}


class NotifyFailed(ConfideError):
    """The message could not be handed to the notification service (nothing else changed)."""


class Notify(Protocol):
    """GOV.UK Notify's shape: a template, a recipient, personalisation."""

    def send_email(
        self, email_address: str, template_id: str, personalisation: Mapping[str, str]
    ) -> None: ...

    def send_sms(
        self, phone_number: str, template_id: str, personalisation: Mapping[str, str]
    ) -> None: ...


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def notify_jwt(service_id: str, secret: str, issued_at: int | None = None) -> str:
    """The bearer token Notify expects: HS256 over ``{"iss": service id, "iat": now}``."""
    header = _b64(json.dumps({"typ": "JWT", "alg": "HS256"}).encode())
    claims = {"iss": service_id, "iat": int(time.time()) if issued_at is None else issued_at}
    body = _b64(json.dumps(claims).encode())
    signature = hmac.new(secret.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{_b64(signature)}"


def split_api_key(api_key: str) -> tuple[str, str]:
    """(service id, secret) from a Notify API key ``<name>-<service uuid>-<secret uuid>``."""
    key = api_key.strip()
    if len(key) < 74:
        raise ConfideError("The Notify API key is not in the expected form.")
    return key[-73:-37], key[-36:]


class NotifyClient:
    """A client for the GOV.UK Notify API (``POST /v2/notifications/{email,sms}``)."""

    def __init__(self, api_key: str, *, base_url: str = NOTIFY_URL, timeout: float = 10.0) -> None:
        self._service_id, self._secret = split_api_key(api_key)
        self._http = httpx.Client(base_url=base_url, timeout=timeout)

    def _post(self, kind: str, body: dict[str, Any]) -> None:
        token = notify_jwt(self._service_id, self._secret)
        try:
            answer = self._http.post(
                f"/v2/notifications/{kind}",
                json=body,
                headers={"Authorization": f"Bearer {token}"},
            )
        except httpx.HTTPError as exc:
            log.error("notify: %s sending an %s", type(exc).__name__, kind)
            raise NotifyFailed("The message could not be sent. Try again shortly.") from None
        if answer.status_code >= 300:
            # Notify's error bodies can repeat the recipient: log the status only.
            log.error("notify: status %s sending an %s", answer.status_code, kind)
            raise NotifyFailed("The message could not be sent. Try again shortly.")

    def send_email(
        self, email_address: str, template_id: str, personalisation: Mapping[str, str]
    ) -> None:
        self._post(
            "email",
            {
                "email_address": email_address,
                "template_id": template_id,
                "personalisation": dict(personalisation),
            },
        )

    def send_sms(
        self, phone_number: str, template_id: str, personalisation: Mapping[str, str]
    ) -> None:
        self._post(
            "sms",
            {
                "phone_number": phone_number,
                "template_id": template_id,
                "personalisation": dict(personalisation),
            },
        )

    def close(self) -> None:
        self._http.close()


@dataclass(frozen=True)
class NotifySettings:
    """Which Notify account and templates to use (from the environment: keys stay out of
    files in the repository)."""

    api_key: str
    code_email: str
    code_sms: str
    change_email: str
    change_sms: str
    base_url: str = NOTIFY_URL

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> NotifySettings | None:
        """The settings, or None when no API key is set; ConfideError when half set."""
        env = os.environ if env is None else env
        if not env.get(ENV["api_key"]):
            return None
        values = {name: env.get(var, "") for name, var in ENV.items()}
        missing = [ENV[n] for n, v in values.items() if not v and n != "base_url"]
        if missing:
            raise ConfideError(
                "GOV.UK Notify is half configured.", hint="Also set " + ", ".join(missing) + "."
            )
        values["base_url"] = values["base_url"] or NOTIFY_URL
        return cls(**values)

    def client(self) -> NotifyClient:
        return NotifyClient(self.api_key, base_url=self.base_url)


def _is_email(contact: str) -> bool:
    return "@" in contact


class NotifyMessenger:
    """Codes and change notices sent through a ``Notify`` (the same calls for patients and
    staff). Implements the identity check's ``Notifier``, the staff ``CodeSender`` and the
    web's ``ChangeNotices``."""

    def __init__(self, notify: Notify, settings: NotifySettings) -> None:
        self.notify = notify
        self.settings = settings

    def _send(self, contact: str, templates: tuple[str, str], fields: dict[str, str]) -> None:
        if _is_email(contact):
            self.notify.send_email(contact, templates[0], fields)
        else:
            self.notify.send_sms(contact, templates[1], fields)

    def send(self, contact: str | None, code: str, expires_at: datetime) -> None:
        if not contact:
            log.warning("notify: no contact details held; a code was not sent")
            return
        fields = {"code": code, "expires_at": f"{expires_at:%H:%M} UTC"}
        self._send(contact, (self.settings.code_email, self.settings.code_sms), fields)

    def choices_changed(
        self, contact: str | None, changes: Mapping[Any, bool], at: datetime, by_proxy: bool
    ) -> None:
        if not contact:
            return
        fields = {"text": notice_text(dict(changes), at, by_proxy)}
        self._send(contact, (self.settings.change_email, self.settings.change_sms), fields)


class WithheldOutbox:
    """For a served app with no notifier configured: records that a message was due, to a
    masked destination, with any code withheld (never written in plain text)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _write(self, message: dict[str, Any]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        stamp = utcnow().strftime("%Y%m%dT%H%M%S%f")
        write_secret(
            self.folder / f"{stamp}-{secrets.token_hex(4)}.json",
            json.dumps(message, indent=2).encode(),
        )

    def send(self, contact: str | None, code: str, expires_at: datetime) -> None:
        log.warning("no notifier is configured: a one-time code was withheld, not sent")
        self._write(
            {
                "to": mask(contact),
                "kind": "code_withheld",
                "text": "A code was due but no notification service is configured.",
            }
        )

    def choices_changed(
        self, contact: str | None, changes: Mapping[Any, bool], at: datetime, by_proxy: bool
    ) -> None:
        self._write({"to": mask(contact), "kind": "choices_changed", "at": at.isoformat()})
