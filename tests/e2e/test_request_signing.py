"""Services accept only requests the Restate server signed with its request-identity key: a
request straight to a service's port, unsigned or signed by another key, is refused before
any handler runs. (Every other e2e test shows that signed traffic through Restate works.)"""

import base64
import json
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
import stripe
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shop.dev import identity_keys
from shop.dev.stack import Stack

from ..invariants import of_order

# Version 4: the first that carries a handler's retry policy (Payments pauses when stuck).
DISCOVER = {"accept": "application/vnd.restate.endpointmanifest.v4+json"}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed(key: Ed25519PrivateKey, path: str) -> dict[str, str]:
    """The headers Restate's request identity v1 puts on a request: an EdDSA JWT for path."""
    now = int(time.time())
    header = {"alg": "EdDSA", "typ": "JWT", "kid": identity_keys.public_key_string(key)}
    claims = {"aud": path, "iat": now, "nbf": now - 5, "exp": now + 60}
    unsigned = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    token = f"{unsigned}.{b64url(key.sign(unsigned.encode()))}"
    return {"x-restate-signature-scheme": "v1", "x-restate-jwt-v1": token}


@pytest.fixture(scope="module")
def payments(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://127.0.0.1:{stack.ports.payments}", timeout=10) as c:
        yield c


def test_unsigned_invocation_is_refused_and_charges_nothing(
    payments: httpx.Client, stripe_api: stripe.StripeClient
) -> None:
    order_id = f"unsigned-{uuid.uuid4().hex[:8]}"
    request = {"order_id": order_id, "amount_cents": 1200, "currency": "eur"}
    response = payments.post(
        "/invoke/Payments/authorize",
        json=request,
        headers={"content-type": "application/vnd.restate.invocation.v1"},
    )
    assert response.status_code == 401, response.text
    intents = stripe_api.v1.payment_intents.list(params=of_order(order_id))
    assert intents.data == []


def test_discovery_needs_restates_signature(stack: Stack, payments: httpx.Client) -> None:
    assert payments.get("/discover", headers=DISCOVER).status_code == 401
    stranger = signed(Ed25519PrivateKey.generate(), "/discover")
    assert payments.get("/discover", headers={**DISCOVER, **stranger}).status_code == 401
    # The same request signed with the stack's own key is served: the refusals above are for
    # the missing or foreign signature, not for a malformed request.
    restate_key = identity_keys.load(stack.identity_key_file)
    response = payments.get("/discover", headers={**DISCOVER, **signed(restate_key, "/discover")})
    assert response.status_code == 200, response.text
    assert "Payments" in {s["name"] for s in response.json()["services"]}


def test_health_stays_open_for_probes(payments: httpx.Client) -> None:
    assert payments.get("/health").status_code == 200
