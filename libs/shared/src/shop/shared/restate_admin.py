"""Restate's admin API (RESTATE_ADMIN_URL, one node or several), for the processes that may
use it: its SQL introspection and its actions on invocations."""

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx

T = TypeVar("T")


class AdminUnavailable(Exception):
    """No node of Restate's admin API answered (or answered a query usably)."""


class RestateAdmin:
    """Each request goes to the first node that answers. One client per node, kept: making
    one per request (an SSL context each, even for http:) cost the orders service a
    millisecond of CPU per order at each Prometheus scrape (bench/cpu_profile.py)."""

    def __init__(self, urls: list[str], timeout: float = 5) -> None:
        self.urls, self.timeout = urls, timeout
        self.clients: dict[str, httpx.AsyncClient] = {}

    async def _send(self, url: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if url not in self.clients:
            self.clients[url] = httpx.AsyncClient(base_url=url, timeout=self.timeout)
        return await self.clients[url].request(method, path, **kwargs)

    async def _first(
        self, answer: Callable[[str], Awaitable[T]], errors: tuple[type[Exception], ...], what: str
    ) -> T:
        """`answer` from the first node for which it raises none of `errors`."""
        error: Exception | None = None
        for url in self.urls:
            try:
                return await answer(url)
            except errors as e:
                error = e
        raise AdminUnavailable(f"Restate's admin API {what}: {error!r}")

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The first answer, whatever its status (an action's refusal is its answer)."""

        def send(url: str) -> Awaitable[httpx.Response]:
            return self._send(url, method, path, **kwargs)

        return await self._first(send, (httpx.HTTPError,), "does not answer")

    async def query(self, sql: str) -> list[dict[str, Any]]:
        """The rows of an introspection query, from the first node that answers it."""

        async def rows(url: str) -> list[dict[str, Any]]:
            response = await self._send(
                url, "POST", "/query", json={"query": sql}, headers={"accept": "application/json"}
            )
            response.raise_for_status()
            return response.json()["rows"]

        errors = (httpx.HTTPError, ValueError, KeyError)
        return await self._first(rows, errors, f"did not answer {sql[:60]!r}")
