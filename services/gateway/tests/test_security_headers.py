"""What every answer tells the browser, and what is served outside dev mode."""

import httpx
import pytest

from shop.gateway.app import create_app
from shop.gateway.settings import GatewaySettings

SECRETS = {
    "admin_token": "5d2f8a91c7e04b36a8f1d9c2e7b40a6f",
    "stripe_webhook_secret": "whsec_unitTest0123456789abcdefXYZ",
}


def settings(**fields: object) -> GatewaySettings:
    """Settings as the environment would give them (strings, validated)."""
    return GatewaySettings.model_validate({**SECRETS, **fields})


async def get(settings: GatewaySettings, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=create_app(settings))  # no lifespan: no Restate needed
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        return await client.get(path)


async def test_every_answer_says_what_a_page_may_do() -> None:
    response = await get(settings(shop_dev_mode=False), "/healthz")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert "strict-transport-security" not in response.headers


async def test_hsts_once_the_storefront_is_https() -> None:
    https = settings(shop_dev_mode=False, public_base_url="https://shop.example")
    response = await get(https, "/healthz")
    assert response.headers["strict-transport-security"].startswith("max-age=")


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json"])
async def test_the_api_document_is_served_in_dev_mode_only(path: str) -> None:
    assert (await get(settings(shop_dev_mode=False), path)).status_code == 404
    assert (await get(GatewaySettings(shop_dev_mode=True), path)).status_code == 200
