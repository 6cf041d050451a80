"""Every request body has a size limit, whether the client declares its length or streams it."""

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Request

from shop.gateway.body_limit import DEFAULT_MAX_BYTES, WEBHOOK_MAX_BYTES, BodyLimit
from shop.gateway.errors import install

JSON = {"content-type": "application/json"}


@pytest.fixture
def app() -> FastAPI:
    app = FastAPI()
    install(app)
    app.add_middleware(BodyLimit)

    @app.post("/api/echo")
    async def echo(body: dict[str, str]) -> int:
        return len(body["x"])

    @app.post("/webhooks/stripe")
    async def hook(request: Request) -> int:
        return len(await request.body())

    return app


async def chunks(size: int, chunk: int = 16 * 1024) -> AsyncIterator[bytes]:
    yield b'{"x": "'
    for _ in range(size // chunk):
        yield b"a" * chunk
    yield b'"}'


async def post(app: FastAPI, path: str, **kwargs) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        return await client.post(path, **kwargs)


async def test_a_declared_length_beyond_the_limit_is_refused_before_reading(app) -> None:
    response = await post(app, "/api/echo", json={"x": "a" * DEFAULT_MAX_BYTES})
    assert response.status_code == 413
    assert response.json() == {
        "error": f"request body too large: at most {DEFAULT_MAX_BYTES} bytes"
    }


async def test_a_streamed_body_is_counted_as_it_arrives(app) -> None:
    for path in ("/api/echo", "/webhooks/stripe"):
        limit = WEBHOOK_MAX_BYTES if path.startswith("/webhooks") else DEFAULT_MAX_BYTES
        response = await post(app, path, content=chunks(limit + 1))  # chunked: no length
        assert response.status_code == 413, (path, response.text)
        assert str(limit) in response.json()["error"]


async def test_bodies_within_the_limit_pass(app) -> None:
    small = await post(app, "/api/echo", content=chunks(DEFAULT_MAX_BYTES // 2), headers=JSON)
    assert small.json() == DEFAULT_MAX_BYTES // 2, small.text
    hook = await post(app, "/webhooks/stripe", content=b"e" * (DEFAULT_MAX_BYTES * 4))
    assert hook.json() == DEFAULT_MAX_BYTES * 4
