"""A party's methods over HTTP: ``POST /rpc/<method>``, signed, for an allowlist of callers.

The server serves only the methods named for its party (:data:`METHODS`), only to the parties
allowed to call it (:data:`CALLERS`) and each method only to those the table of
:mod:`confide.services.permissions` names, and only requests signed for it by an enrolled
party that it has not seen before (:mod:`confide.services.signing`); ``GET /health``
answers unsigned. The client, :class:`RemoteParty`, offers the same methods as the party
itself, so a composition's users cannot tell one transport from the other. Arguments and
results cross through :mod:`confide.services.codec`; a party's ``ConfideError`` comes back as
the same error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from confide.common import exit_codes
from confide.common.errors import ConfideError
from confide.services import codec
from confide.services.limits import bounded_body
from confide.services.permissions import callers_of, may_call, may_write
from confide.services.signing import RequestRefused, Signer, Verifier

log = logging.getLogger("confide.services")

# The methods each party serves to the others (its ports; nothing else is reachable).
METHODS: dict[str, tuple[str, ...]] = {
    "choices": (
        "set", "bulk_set", "apply_gp_code", "apply_gp_codes", "current", "current_many",
        "facts", "shares_nothing", "history", "derived_current", "events_since", "version",
        "holders", "enrol_demographics", "record_lpa", "revoke_lpa", "settle",
        "relay_status", "relay_run", "publishable_statistics",
    ),
    "pseudonymiser": (
        "public_key", "rotate_key", "pseudonyms_for", "pseudonyms_to_erase",
        "pseudonymise_submission", "resolutions", "linkage_quality", "linkage_model",
        "review_items",
        "shares_nothing",
        "decide_review", "pending_linkage_count",
    ),
    "hub": (
        "enrol", "erase", "erase_everywhere", "complete_erasures", "ingest", "readmit",
        "after_erasure", "settle", "relay_status", "relay_run", "erasure_status",
    ),
    "access": (
        "create_organisation", "organisation", "organisations", "add_person", "revoke_role",
        "person", "organisations_of", "create_client", "revoke_client", "issue_token",
        "authenticate", "principal_for", "project", "projects", "history", "apply", "submit",
        "approve", "reject", "suspend", "reinstate", "authorise_query", "audit_trail",
        "decisions", "settle", "relay_status", "relay_run",
    ),
    # The TRE's query service and output checkers' queue, served by the hub's service
    # (methods named ``tre.<name>`` and ``review.<name>``).
    "tre": ("run", "show", "history", "budget"),
    "review": ("queue", "item", "vote"),
    "ledger": (
        "append", "append_many", "append_once", "head", "entries", "decoded", "root_at",
        "inclusion_proof", "consistency_proof", "checkpoint_note", "sign_head", "verifier_key",
        "checkpoint", "witness_keys",
        "cosign_latest",
    ),
}  # fmt: skip
# Who may call each party at all (from the table of who may call which method).
CALLERS: dict[str, frozenset[str]] = {party: callers_of(party) for party in METHODS}


class ServiceUnavailable(ConfideError):
    """A party's service that does not answer (not started, restarting, or stopped)."""

    exit_code = exit_codes.UNAVAILABLE


def rpc_app(
    party: str,
    methods: Mapping[str, Callable[..., Any]],
    verifier: Verifier,
    *,
    callers: frozenset[str] | None = None,
    refresh: Callable[[], None] | None = None,
) -> FastAPI:
    """``methods`` of ``party`` served to ``callers`` (default :data:`CALLERS`); ``refresh``
    re-reads the enrolled keys when a request names a party not enrolled yet."""
    allowed = CALLERS[party] if callers is None else callers
    app = FastAPI(title=f"Confide {party}", docs_url=None, redoc_url=None, openapi_url=None)

    def refused(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": {"message": message}}, status_code=status)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"party": party, "status": "ok"}

    @app.post("/rpc/{method}")
    async def call(method: str, request: Request) -> Response:
        body = await bounded_body(request)
        if body is None:
            return refused(413, "The request's body is larger than a service accepts.")
        headers = dict(request.headers)
        try:
            sender = headers.get("x-confide-party", "")
            if refresh is not None and sender not in verifier.enrolled:
                refresh()
            caller = verifier.check(party, "POST", f"/rpc/{method}", headers, body)
        except RequestRefused as exc:
            return refused(401, exc.message)
        if caller not in allowed:
            return refused(403, f"The {caller} party may not call the {party} party.")
        if not may_call(caller, party, method):
            return refused(403, f"The {caller} party may not call {method!r} of the {party} party.")
        target = methods.get(method)
        if target is None:
            return refused(404, f"The {party} party has no method {method!r}.")
        try:
            call = codec.loads(body)
            args, kwargs = call.get("args", []), call.get("kwargs", {})
            if not isinstance(args, list) or not all(isinstance(k, str) for k in kwargs):
                raise TypeError("not a list of arguments and a map of named ones")
            kwargs = dict(kwargs)
        except (codec.NotEncodable, orjson.JSONDecodeError, AttributeError, TypeError):
            return refused(422, "The request's body is not an encoded call.")
        if party == "ledger" and not may_write(caller, method, args, kwargs):
            return refused(403, f"The {caller} party may not record these entries.")
        try:
            result = await run_in_threadpool(target, *args, **kwargs)
            answer = orjson.dumps({"result": codec.to_plain(result)})
        except ConfideError as exc:
            return JSONResponse({"error": codec.error_to_plain(exc)}, status_code=422)
        except codec.NotEncodable:  # a wiring defect: the result's type, never its value
            log.error("%s.%s returned a result that may not cross between parties", party, method)
            return refused(500, f"The {party} party's answer to {method!r} cannot be sent.")
        except Exception as exc:  # only the class: a message could name a person
            log.error("%s.%s failed (%s)", party, method, type(exc).__name__)
            return refused(500, f"The {party} party failed ({type(exc).__name__}).")
        return Response(answer, media_type="application/json")

    return app


class NotServed(ConfideError, AttributeError):
    """An attribute of a party that its service does not offer: only its methods cross, so
    reading or setting anything else on a client is refused, never silently local."""


class RemoteParty:
    """A party served elsewhere: the allowlisted methods of ``party``, called over HTTP.

    Only those methods cross: reading any other attribute, or setting any attribute, is
    refused (:class:`NotServed`), since it would change or show this client, not the party.
    An option of a call travels as one of its arguments."""

    OWN = frozenset({"party", "namespace", "service", "url", "signer", "methods", "http"})

    def __init__(
        self,
        party: str,
        url: str,
        signer: Signer,
        *,
        timeout: float = 30.0,
        connect: float = 3.0,
        namespace: str = "",
    ) -> None:
        self.party = party
        self.namespace = namespace  # "tre." for the TRE's methods at the hub's service
        self.service = "hub" if namespace else party  # the party whose service answers
        self.url = url.rstrip("/")
        self.signer = signer
        self.methods = frozenset(METHODS[party])
        self.http = httpx.Client(timeout=httpx.Timeout(timeout, connect=connect))

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in self.OWN:
            party = self.__dict__.get("party", "remote")
            raise NotServed(
                f"The {party} party runs as a service: setting its {name!r} here would change "
                "nothing there.",
                hint="Pass the option as an argument of the call.",
            )
        object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        return f"RemoteParty({self.party!r}, {self.url!r})"

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_") or "methods" not in self.__dict__:
            raise AttributeError(name)
        if name not in self.methods:
            raise NotServed(
                f"The {self.party} service offers no {name!r}.",
                hint="Run this command without a deployment running for this home, "
                "or use a command that goes through the service.",
            )

        def remote(*args: Any, **kwargs: Any) -> Any:
            return self.call(name, *args, **kwargs)

        remote.__name__ = name
        return remote

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        body = codec.dumps({"args": list(args), "kwargs": kwargs})
        path = f"/rpc/{self.namespace}{method}"
        headers = {
            "Content-Type": "application/json",
            **self.signer.headers(self.service, "POST", path, body),
        }
        try:
            reply = self.http.post(self.url + path, content=body, headers=headers)
        except httpx.TransportError:
            raise self.unavailable() from None
        if reply.status_code == 200:
            return codec.from_plain(orjson.loads(reply.content)["result"])
        try:
            error = orjson.loads(reply.content)["error"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            error = None
        if not isinstance(error, dict):  # not the service's own answer: a proxy, a restart
            raise self.unavailable()
        if reply.status_code == 422 and "class" in error:
            raise codec.error_from_plain(error)
        raise ConfideError(
            f"The {self.party} service refused the call: {error.get('message', '')}",
            hint="Check that every party of this deployment was started by the same `confide up`.",
        )

    def unavailable(self) -> ServiceUnavailable:
        return ServiceUnavailable(
            f"The {self.party} service is not answering.",
            hint="Check `confide services status`; `confide up` restarts a service that stopped.",
        )

    def healthy(self) -> bool:
        try:
            return self.http.get(f"{self.url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def close(self) -> None:
        self.http.close()
