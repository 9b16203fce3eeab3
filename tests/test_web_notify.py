"""Codes and notices through a GOV.UK Notify-shaped client, against a Notify stand-in served
on loopback that checks the JWT the way Notify does; and no code in plain text outside the
demo."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.testclient import TestClient
from web_console_world import serve
from web_seed import csrf_of

from confide.choices.registry import ChoicesRegistry
from confide.common.errors import ConfideError
from confide.common.home import Home
from confide.web.app import create_app
from confide.web.notify import (
    ENV,
    NotifyClient,
    NotifyFailed,
    NotifyMessenger,
    NotifySettings,
    split_api_key,
)

SERVICE = "26785a09-ab16-4eb0-8407-a37497a57506"
SECRET = "3d844edf-8d35-48ac-975b-e847b4f122b0"
API_KEY = f"confide_test-{SERVICE}-{SECRET}"
KNOWN = "9434765919"


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def notify_stand_in(received: list[dict]) -> FastAPI:
    """Checks the bearer JWT as Notify does (HS256, iss = service id, iat within 30 s)."""
    app = FastAPI()

    async def accept(kind: str, request: Request, authorization: str | None) -> dict:
        token = (authorization or "").removeprefix("Bearer ")
        try:
            header, claims, signature = token.split(".")
        except ValueError:
            raise HTTPException(403, "bad token") from None
        good = hmac.new(SECRET.encode(), f"{header}.{claims}".encode(), hashlib.sha256).digest()
        body = json.loads(_unb64(claims))
        if not hmac.compare_digest(_unb64(signature), good) or body["iss"] != SERVICE:
            raise HTTPException(403, [{"error": "AuthError", "message": "Invalid token"}])
        if abs(time.time() - body["iat"]) > 30:
            raise HTTPException(403, "expired")
        received.append({"kind": kind, **(await request.json())})
        return {"id": "x"}

    @app.post("/v2/notifications/email", status_code=201)
    async def email(request: Request, authorization: str | None = Header(None)) -> dict:
        return await accept("email", request, authorization)

    @app.post("/v2/notifications/sms", status_code=201)
    async def sms(request: Request, authorization: str | None = Header(None)) -> dict:
        return await accept("sms", request, authorization)

    return app


@pytest.fixture(scope="module")
def notify() -> tuple[str, list[dict]]:
    received: list[dict] = []
    with serve(notify_stand_in(received)) as url:
        yield url, received


def _settings(url: str) -> NotifySettings:
    return NotifySettings(
        API_KEY, "tpl-code-email", "tpl-code-sms", "tpl-chg-email", "tpl-chg-sms", url
    )


def test_the_client_signs_as_notify_expects_and_sends_both_kinds(notify) -> None:
    url, received = notify
    assert split_api_key(API_KEY) == (SERVICE, SECRET)
    messenger = NotifyMessenger(NotifyClient(API_KEY, base_url=url), _settings(url))
    expires = datetime(2026, 1, 1, 9, 10, tzinfo=UTC)
    messenger.send("jo@example.org", "123456", expires)
    messenger.send("07700 900123", "654321", expires)
    assert received[-2] == {
        "kind": "email",
        "email_address": "jo@example.org",
        "template_id": "tpl-code-email",
        "personalisation": {"code": "123456", "expires_at": "09:10 UTC"},
    }
    assert received[-1]["kind"] == "sms" and received[-1]["template_id"] == "tpl-code-sms"


def test_a_refused_message_is_a_clear_error_naming_nobody(notify, caplog) -> None:
    url, _ = notify
    wrong = f"confide_test-{SERVICE}-{'0' * 8}-{SECRET[9:]}"
    with pytest.raises(NotifyFailed) as info:
        NotifyClient(wrong, base_url=url).send_email("jo@example.org", "t", {"code": "1"})
    assert "jo@example.org" not in info.value.message
    assert "jo@example.org" not in caplog.text and "403" in caplog.text


def test_half_configured_settings_are_refused() -> None:
    assert NotifySettings.from_env({}) is None
    with pytest.raises(ConfideError, match="half configured"):
        NotifySettings.from_env({ENV["api_key"]: API_KEY})


def _home_with_person(tmp_path: Path) -> Home:
    home = Home.at(tmp_path / "home")
    registry = ChoicesRegistry.open(home)
    registry.enrol_demographics([(KNOWN, date(1980, 5, 17), "ls14ap", "B82001", None, "jo@x.org")])
    registry.close()
    return home


def _start(app) -> None:
    with TestClient(app, base_url="https://testserver") as http:
        token = csrf_of(http.get("/identity").text)
        form = {
            "csrf_token": token,
            "nhs_number": KNOWN,
            "birth[day]": "17",
            "birth[month]": "5",
            "birth[year]": "1980",
            "postcode": "LS1 4AP",
        }
        assert http.post("/identity", data=form).status_code == 200


def test_a_served_app_sends_codes_through_notify_when_configured(
    opstore, tmp_path, notify, monkeypatch
) -> None:
    url, received = notify
    for name, value in zip(
        ("api_key", "code_email", "code_sms", "change_email", "change_sms", "base_url"),
        (API_KEY, "tpl-code-email", "tpl-code-sms", "tpl-chg-email", "tpl-chg-sms", url),
        strict=True,
    ):
        monkeypatch.setenv(ENV[name], value)
    home = _home_with_person(tmp_path)
    before = len(received)
    _start(create_app(home, demo=False))
    sent = received[before:]
    assert len(sent) == 1 and sent[0]["email_address"] == "jo@x.org"
    assert len(sent[0]["personalisation"]["code"]) == 6
    assert not list((home.root / "outbox").glob("*.json"))  # nothing written locally


def test_without_notify_a_served_app_never_writes_a_code(opstore, tmp_path, monkeypatch) -> None:
    for var in ENV.values():
        monkeypatch.delenv(var, raising=False)
    home = _home_with_person(tmp_path)
    _start(create_app(home, demo=False))
    messages = [json.loads(p.read_text()) for p in (home.root / "outbox").glob("*.json")]
    assert [m["kind"] for m in messages] == ["code_withheld"]
    assert all("code" not in m and not any(c.isdigit() for c in m["text"]) for m in messages)
