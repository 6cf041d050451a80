"""Long-lived clients live on app.state (made in the lifespan); handlers get them from here.

Every dependency is `async def`, though none awaits: FastAPI runs a plain `def` dependency in
its thread pool, a thread hop per dependency per request (~10% of the gateway's CPU under load).
"""

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import (
    HTTPAuthorizationCredentials,
    HTTPBasic,
    HTTPBasicCredentials,
    HTTPBearer,
)
from fastapi.security.utils import get_authorization_scheme_param
from starlette.requests import HTTPConnection

from shop.gateway.admission import InFlight
from shop.gateway.client_limits import ClientLimits
from shop.gateway.progress_hub import ProgressHub
from shop.gateway.restate_ingress import RestateIngress
from shop.gateway.settings import GatewaySettings


def client_of(request: Request) -> str:
    """The client's address as the gateway sees it (behind a trusted proxy, X-Forwarded-For's)."""
    return request.client.host if request.client else "unknown"


async def get_settings(request: Request) -> GatewaySettings:
    return request.app.state.settings


async def get_ingress(request: Request) -> RestateIngress:
    return request.app.state.ingress


async def get_hub(request: Request) -> ProgressHub:
    return request.app.state.hub


class Admission:
    """Admits a new order or raises Overloaded (429); then `start` counts it as placed, or
    `abandon` gives its place back."""

    def __init__(self, request: Request) -> None:
        self.in_flight: InFlight = request.app.state.in_flight
        self.hub: ProgressHub = request.app.state.hub
        self.limits: ClientLimits = request.app.state.client_limits
        self.client = client_of(request)

    def admit(self) -> None:
        self.limits.take_order(self.client)  # before the bound: no client holds all of it
        self.in_flight.admit(self.hub.connected)

    def start(self, order_id: str) -> None:
        self.in_flight.start(order_id)

    def abandon(self) -> None:
        self.in_flight.abandon()


Settings = Annotated[GatewaySettings, Depends(get_settings)]
# Holds one of the client's (and the order's, and the process's) live-progress streams for an
# order, or raises TooMany; what it returns gives the stream back.
StreamHold = Callable[[str], Callable[[], None]]


async def get_stream_hold(request: Request) -> StreamHold:
    limits: ClientLimits = request.app.state.client_limits
    client = client_of(request)
    return lambda order_id: limits.hold_stream(client, order_id)


Hold = Annotated[StreamHold, Depends(get_stream_hold)]


def site_of(request: Request, settings: GatewaySettings) -> str:
    """The storefront's address as customers reach it: PUBLIC_BASE_URL, never the request's
    Host header (anyone may send any), except in dev where it is unset."""
    return settings.public_base_url or str(request.base_url)


Ingress = Annotated[RestateIngress, Depends(get_ingress)]
Hub = Annotated[ProgressHub, Depends(get_hub)]


async def get_admission(request: Request) -> Admission:
    return Admission(request)


Admit = Annotated[Admission, Depends(get_admission)]


async def shed_when_overloaded(admission: Admit) -> None:
    """For the API: Overloaded before the body is validated, since under overload most
    requests are shed and each should cost as little as it can. (The storefront instead
    answers with its page, keeping the customer's cart.)"""
    admission.in_flight.check(admission.hub.connected)


class OperatorPageBasic(HTTPBasic):
    """HTTP Basic as a browser sends it. Credentials it cannot read (not base64, not UTF-8)
    are none at all, so that require_admin answers them as it answers a missing token:
    FastAPI's HTTPBasic raises its own 401 for those, even without auto_error."""

    # As HTTPBasic's own __call__, which answers HTTPBasicCredentials too (not HTTPBase's type).
    async def __call__(  # type: ignore[override]
        self, request: HTTPConnection
    ) -> HTTPBasicCredentials | None:
        scheme, credentials = get_authorization_scheme_param(request.headers.get("Authorization"))
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(credentials, validate=True).decode()
        except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
            return None
        username, _, password = decoded.partition(":")
        return HTTPBasicCredentials(username=username, password=password)


# The operators' two ways in, for the OpenAPI document's security schemes too. Neither answers
# by itself (auto_error=False): require_admin answers 401 for both, with the Basic challenge.
admin_bearer = HTTPBearer(
    scheme_name="AdminToken",
    description="`Authorization: Bearer <ADMIN_TOKEN>`: API clients.",
    auto_error=False,
)
admin_basic = OperatorPageBasic(
    scheme_name="OperatorPage",
    realm="shop admin",
    description="HTTP Basic with ADMIN_TOKEN as the password (any user name): the operator "
    "pages, in a browser. An action (not a read) also needs the page's `X-CSRF-Token`.",
    auto_error=False,
)
AdminBearer = Annotated[HTTPAuthorizationCredentials | None, Depends(admin_bearer)]
AdminBasic = Annotated[HTTPBasicCredentials | None, Depends(admin_basic)]


def admin_authorized(
    bearer: HTTPAuthorizationCredentials | None, basic: HTTPBasicCredentials | None, token: str
) -> bool:
    """`Bearer <token>` (API clients) or HTTP Basic with the token as password (browsers)."""
    sent = bearer.credentials if bearer else basic.password if basic else None
    return sent is not None and secrets.compare_digest(sent.encode(), token.encode())


def csrf_token(admin_token: str) -> str:
    """What the operator page sends with each of its actions (htmx, as X-CSRF-Token): a page
    of another site cannot read it, so cannot forge the action with the browser's Basic
    credentials, which the browser sends by itself. Derived from ADMIN_TOKEN: nothing to keep."""
    return hmac.new(admin_token.encode(), b"shop operator actions", hashlib.sha256).hexdigest()


def cross_site(request: Request) -> bool:
    """A request a page of another site made the browser send (Fetch Metadata, else Origin)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site not in ("same-origin", "none")
    origin = request.headers.get("origin")
    return origin is not None and origin != f"{request.url.scheme}://{request.headers.get('host')}"


async def require_admin(
    request: Request, settings: Settings, bearer: AdminBearer, basic: AdminBasic
) -> None:
    """The operators' token; and for an action (not a read), a request from no other site,
    and, from a browser (Basic), the page's CSRF token. A Bearer token is never sent by a
    browser on its own, so API clients need neither."""
    token = settings.admin_token.get_secret_value()
    if not admin_authorized(bearer, basic, token):
        # `Basic realm="shop admin"`: lets a browser ask for it
        challenge = admin_basic.make_authenticate_headers()
        raise HTTPException(401, "missing or wrong admin token", challenge)
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    if cross_site(request):
        raise HTTPException(403, "cross-site request refused")
    sent = request.headers.get("x-csrf-token", "")
    if basic is not None and not hmac.compare_digest(sent.encode(), csrf_token(token).encode()):
        raise HTTPException(403, "missing or wrong CSRF token: act from the operator page")


async def operator_name(basic: AdminBasic) -> str:
    """Which admin credential acts, for the record (never the credential): the Basic user
    name a browser gave, or `api` for the Bearer token."""
    if basic is not None:
        return f"operator page ({basic.username[:64] or 'no name'})"
    return "api (Bearer token)"


Operator = Annotated[str, Depends(operator_name)]
