"""The orders service's connections to the order book (PostgreSQL), one pool per process."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from restate import TerminalError

from shop.orders import book
from shop.orders.settings import settings


@cache
def connections() -> AsyncConnectionPool:
    return book.pool(settings)


async def open_pool() -> AsyncConnectionPool:
    pool = connections()
    await pool.open(wait=False)  # idempotent; connects in the background
    return pool


@asynccontextmanager
async def connection() -> AsyncIterator[AsyncConnection[Any]]:
    """A connection from the pool. A value PostgreSQL refuses (a NUL in a string, say) is
    the caller's mistake, which no retry mends: a terminal error, answered once. Anything
    else (PostgreSQL down, a connection lost) is retried by Restate until it is back."""
    async with (await open_pool()).connection() as conn:
        try:
            yield conn
        except psycopg.DataError as e:
            raise TerminalError(f"the book cannot take that: {e}", status_code=400) from e
