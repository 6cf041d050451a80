"""SMTP connections kept open between messages: a message then costs MAIL, RCPT and DATA,
not also a new connection, the server's greeting, EHLO and QUIT (about half the round trips
and of this service's time per order)."""

import contextlib
from collections.abc import AsyncIterator

import aiosmtplib


class SmtpPool:
    def __init__(self, hostname: str, port: int, timeout: float, keep: int = 16) -> None:
        self.hostname, self.port, self.timeout, self.keep = hostname, port, timeout, keep
        self.idle: list[aiosmtplib.SMTP] = []

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[aiosmtplib.SMTP]:
        """An open connection for one message. One that failed in any way is closed, never
        reused (its state is unknown); a message cut off by a connection the server had
        dropped meanwhile fails like any other, and its step is retried on a new one."""
        smtp = None
        while self.idle and smtp is None:
            candidate = self.idle.pop()
            smtp = candidate if candidate.is_connected else None
        if smtp is None:
            smtp = aiosmtplib.SMTP(hostname=self.hostname, port=self.port, timeout=self.timeout)
            await smtp.connect()
        try:
            yield smtp
        except BaseException:
            smtp.close()
            raise
        if len(self.idle) < self.keep:
            self.idle.append(smtp)
        else:  # closed without QUIT: nothing may fail once the message is delivered
            smtp.close()
