"""SmtpPool against a real SMTP server (aiosmtpd) in this process."""

import asyncio
from collections.abc import Iterator
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller

from shop.dev.stack import free_port
from shop.email.smtp_pool import SmtpPool


class Mailbox:
    """Counts what the server saw: one EHLO per connection, one DATA per message."""

    def __init__(self) -> None:
        self.greetings, self.messages = 0, 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.greetings += 1
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server, session, envelope):
        self.messages += 1
        return "250 OK"


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, Controller]]:
    box = Mailbox()
    server = Controller(box, hostname="127.0.0.1", port=free_port())
    server.start()
    yield box, server
    if server._thread is not None:  # the test may have stopped it
        server.stop()


def message(n: int) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "shop@example.com", "ann@example.com", f"#{n}"
    msg.set_content("hello")
    return msg


async def send(pool: SmtpPool, n: int) -> None:
    async with pool.connection() as smtp:
        await smtp.send_message(message(n))


async def test_messages_one_after_another_share_one_connection(mailbox) -> None:
    box, server = mailbox
    pool = SmtpPool(server.hostname, server.port, timeout=5)
    for n in range(3):
        await send(pool, n)
    assert (box.greetings, box.messages) == (1, 3)


async def test_a_connection_the_server_dropped_is_replaced(mailbox) -> None:
    box, server = mailbox
    pool = SmtpPool(server.hostname, server.port, timeout=5)
    await send(pool, 1)
    server.stop()  # closes the connection the pool keeps, as a restarted relay would
    restarted = Controller(box, hostname=server.hostname, port=server.port)
    restarted.start()
    try:
        # Idle meanwhile, until the pool's loop has seen the connection end (a transport's
        # state: no event to await).
        async with asyncio.timeout(5):
            while pool.idle[0].is_connected:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        await send(pool, 2)
    finally:
        restarted.stop()
    assert (box.greetings, box.messages) == (2, 2)


async def test_a_connection_that_failed_is_not_reused(mailbox) -> None:
    box, server = mailbox
    pool = SmtpPool(server.hostname, server.port, timeout=5)
    with pytest.raises(RuntimeError):
        async with pool.connection():
            raise RuntimeError("the step failed midway")
    await send(pool, 1)
    assert box.greetings == 2 and pool.idle and len(pool.idle) == 1


async def test_connections_beyond_those_kept_are_closed(mailbox) -> None:
    box, server = mailbox
    pool = SmtpPool(server.hostname, server.port, timeout=5, keep=1)
    async with pool.connection() as first, pool.connection() as second:
        await first.send_message(message(1))
        await second.send_message(message(2))
    assert box.messages == 2 and len(pool.idle) == 1
    assert sum(smtp.is_connected for smtp in (first, second)) == 1
