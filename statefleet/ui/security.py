"""Who may do what: authentication, CSRF, read-only mode, loopback-only without credentials.

* **Credentials** come from the settings: bearer tokens (``STATEFLEET_UI_API_TOKENS``,
  comma-separated) for the API, and a basic-auth user and password
  (``STATEFLEET_UI_USERNAME`` / ``STATEFLEET_UI_PASSWORD``) for the pages (a token works on
  the pages too, basic auth on the API too). With credentials configured, every request
  but ``/health`` and ``/static/`` must carry them (else 401).
* **Without credentials** the UI serves loopback clients only: bound to another address it
  refuses to start (:func:`check_bind`), and a request from a non-loopback peer gets 401.
* **CSRF**: each browser gets a session cookie (random id, signed with
  ``STATEFLEET_UI_SECRET``, or a per-process random secret); its CSRF token is an HMAC of
  the session id. Every state-changing request (not GET/HEAD/OPTIONS) must send it, in the
  ``X-CSRF-Token`` header or a ``csrf`` form field, else 403 — except requests
  authenticated with a bearer token (no cookie a browser could send on its own).
* **Read-only** (``--read-only``): every state-changing request gets 403, and the pages
  hide their actions.
* Responses carry a strict Content-Security-Policy (scripts from this origin only), so
  even markup that slipped through escaping could not run a script.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import os
import secrets
from dataclasses import dataclass

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from statefleet.settings import Settings

__all__ = [
    "CSRF_FIELD",
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "Guard",
    "GuardMiddleware",
    "check_bind",
    "is_loopback",
]

SESSION_COOKIE = "statefleet_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PUBLIC_PREFIXES = ("/static/",)
PUBLIC_PATHS = frozenset({"/health"})

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'"
)


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Guard:
    """The security policy of one app (see the module docstring)."""

    tokens: frozenset[str]
    username: str | None
    password: str | None
    secret: bytes
    read_only: bool

    @classmethod
    def from_settings(cls, settings: Settings, *, read_only: bool = False) -> Guard:
        tokens = frozenset(
            t.strip()
            for t in (
                settings.ui_api_tokens.get_secret_value() if settings.ui_api_tokens else ""
            ).split(",")
            if t.strip()
        )
        password = settings.ui_password.get_secret_value() if settings.ui_password else None
        secret = (
            settings.ui_secret.get_secret_value().encode() if settings.ui_secret else os.urandom(32)
        )
        return cls(
            tokens=tokens,
            username=settings.ui_username if password else None,
            password=password if settings.ui_username else None,
            secret=secret,
            read_only=read_only,
        )

    @property
    def has_credentials(self) -> bool:
        return bool(self.tokens) or self.password is not None

    # ------------------------------------------------------------------ sessions, CSRF

    def sign(self, session_id: str) -> str:
        mac = hmac.new(self.secret, b"session:" + session_id.encode(), hashlib.sha256)
        return f"{session_id}.{mac.hexdigest()[:32]}"

    def session_of(self, cookie: str | None) -> str | None:
        if not cookie or "." not in cookie:
            return None
        session_id, _, _ = cookie.partition(".")
        return session_id if hmac.compare_digest(self.sign(session_id), cookie) else None

    def csrf_token(self, session_id: str) -> str:
        return hmac.new(self.secret, b"csrf:" + session_id.encode(), hashlib.sha256).hexdigest()

    # ------------------------------------------------------------------ authentication

    def authenticate(self, header: str | None) -> str | None:
        """``"token"``, ``"basic"``, ``None`` (no credentials sent); raises ValueError for
        wrong ones."""
        if not header:
            return None
        scheme, _, value = header.partition(" ")
        scheme = scheme.lower()
        value = value.strip()
        if scheme == "bearer":
            if any(hmac.compare_digest(value, token) for token in self.tokens):
                return "token"
            raise ValueError("invalid bearer token")
        if scheme == "basic":
            try:
                user, _, password = base64.b64decode(value).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                raise ValueError("malformed basic credentials") from None
            if (
                self.username is not None
                and self.password is not None
                and hmac.compare_digest(user, self.username)
                and hmac.compare_digest(password, self.password)
            ):
                return "basic"
            raise ValueError("invalid user or password")
        raise ValueError(f"unsupported authorization scheme {scheme!r}")


def check_bind(host: str, guard: Guard) -> None:
    """Refuse (ValueError) to serve on a non-loopback address without credentials."""
    if not is_loopback(host) and not guard.has_credentials:
        raise ValueError(
            f"refusing to listen on {host}: off loopback the UI needs credentials "
            "(STATEFLEET_UI_API_TOKENS, or STATEFLEET_UI_USERNAME and STATEFLEET_UI_PASSWORD)"
        )


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return (
        request.url.path.startswith("/api/")
        or "application/json" in accept
        or ("text/html" not in accept)
    )


def _deny(request: Request, status: int, message: str, guard: Guard) -> Response:
    headers = {}
    if status == 401:
        challenges = []
        if guard.password is not None:
            challenges.append('Basic realm="statefleet", charset="UTF-8"')
        if guard.tokens:
            challenges.append('Bearer realm="statefleet"')
        if challenges:
            headers["WWW-Authenticate"] = ", ".join(challenges)
    if _wants_json(request):
        return JSONResponse({"error": message, "status": status}, status, headers=headers)
    return PlainTextResponse(f"{status}: {message}", status, headers=headers)


class GuardMiddleware:
    """Applies a :class:`Guard` to every HTTP request (see the module docstring). A plain
    ASGI middleware: responses (static files included) stream through untouched but for
    the security headers and the session cookie."""

    def __init__(self, app: ASGIApp, guard: Guard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        guard = self.guard
        request = Request(scope, receive)
        path = request.url.path
        public = path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)
        session_id = guard.session_of(request.cookies.get(SESSION_COOKIE))
        new_session = session_id is None
        if session_id is None:
            session_id = secrets.token_hex(16)
        request.state.csrf_token = guard.csrf_token(session_id)
        request.state.read_only = guard.read_only
        denied: Response | None = None
        try:
            auth = guard.authenticate(request.headers.get("authorization"))
        except ValueError as exc:
            auth = None
            if not public:
                denied = _deny(request, 401, str(exc), guard)
        request.state.auth = auth
        if denied is None and not public:
            client = request.client.host if request.client else None
            if guard.has_credentials and auth is None:
                denied = _deny(request, 401, "authentication required", guard)
            elif not guard.has_credentials and not is_loopback(client):
                denied = _deny(
                    request,
                    401,
                    "this UI has no credentials configured: it serves loopback clients only",
                    guard,
                )
        if denied is None and request.method not in SAFE_METHODS:
            if guard.read_only:
                denied = _deny(request, 403, "read-only mode: actions are disabled", guard)
            elif auth != "token":
                body = await request.body()
                if not await _csrf_ok(request):
                    denied = _deny(request, 403, "missing or invalid CSRF token", guard)
                receive = _replay(body, receive)
        cookie = None
        if new_session and not public:
            holder = Response()
            holder.set_cookie(
                SESSION_COOKIE,
                guard.sign(session_id),
                httponly=True,
                samesite="strict",
                secure=request.url.scheme == "https",
                path="/",
            )
            cookie = holder.headers["set-cookie"]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", CSP)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "same-origin")
                headers.setdefault("X-Frame-Options", "DENY")
                if cookie is not None:
                    headers.append("set-cookie", cookie)
            await send(message)

        if denied is not None:
            await denied(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the (already read) body to the app, then the client's events."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _csrf_ok(request: Request) -> bool:
    expected: str = request.state.csrf_token
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        kind = request.headers.get("content-type", "")
        if kind.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()  # parses the body already read
            value = form.get(CSRF_FIELD)
            sent = value if isinstance(value, str) else None
        elif kind.startswith("application/json"):
            try:
                body = json.loads(await request.body() or b"{}")
            except ValueError:
                body = None
            if isinstance(body, dict) and isinstance(body.get(CSRF_FIELD), str):
                sent = body[CSRF_FIELD]
    return sent is not None and hmac.compare_digest(sent, expected)
