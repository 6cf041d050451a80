"""Restate's admin API (RESTATE_ADMIN_URL, one node or several), for the processes that may
use it: its SQL introspection and its actions on invocations."""

from typing import Any

import httpx


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

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The first answer, whatever its status (an action's refusal is its answer)."""
        error: Exception | None = None
        for url in self.urls:
            try:
                return await self._send(url, method, path, **kwargs)
            except httpx.HTTPError as e:
                error = e
        raise AdminUnavailable(f"Restate's admin API does not answer: {error!r}")

    async def query(self, sql: str) -> list[dict[str, Any]]:
        """The rows of an introspection query, from the first node that answers it."""
        error: Exception | None = None
        for url in self.urls:
            try:
                response = await self._send(
                    url,
                    "POST",
                    "/query",
                    json={"query": sql},
                    headers={"accept": "application/json"},
                )
                response.raise_for_status()
                return response.json()["rows"]
            except (httpx.HTTPError, ValueError, KeyError) as e:
                error = e
        raise AdminUnavailable(f"Restate's admin API did not answer {sql[:60]!r}: {error!r}")
