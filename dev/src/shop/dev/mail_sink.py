"""The dev SMTP server's handler: aiosmtpd's Maildir Mailbox, plus a temporary-refusal switch.

Run as `python -m aiosmtpd -c shop.dev.mail_sink.FlakyMailbox MAILDIR FAULTS_FILE`. Writing a
number N into FAULTS_FILE makes the next N messages get `451 try again later`, the way a busy
mail server answers, so tests can show a refused mail is retried and delivered once.
"""

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from aiosmtpd.handlers import Mailbox


class FlakyMailbox(Mailbox):
    def __init__(self, mail_dir: str, faults_file: str) -> None:
        super().__init__(Path(mail_dir))
        self.faults_file = Path(faults_file)

    def take_fault(self) -> bool:
        try:
            remaining = int(self.faults_file.read_text() or 0)
        except (FileNotFoundError, ValueError):
            return False
        if remaining <= 0:
            return False
        self.faults_file.write_text(str(remaining - 1))
        return True

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.take_fault():
            return "451 4.3.0 Temporarily unable to accept mail, try again later"
        return await super().handle_DATA(server, session, envelope)

    @classmethod
    def from_cli(cls, parser: ArgumentParser, *args: str) -> "FlakyMailbox":
        if len(args) != 2:
            parser.error("usage: FlakyMailbox MAILDIR FAULTS_FILE")
        return cls(args[0], args[1])
