"""Email: sends the customer's mail over SMTP as one journaled step."""

import aiosmtplib
import restate
from restate import Context, RunOptions, TerminalError

from shop.email.messages import confirmation
from shop.email.settings import settings
from shop.shared import names
from shop.shared.models import EmailReceipt, EmailRequest

email = restate.Service(names.EMAIL)


async def deliver(request: EmailRequest) -> EmailReceipt:
    msg = confirmation(request, settings.mail_from)
    try:
        await aiosmtplib.send(
            msg,
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            timeout=settings.smtp_timeout_seconds,
        )
    except aiosmtplib.SMTPResponseException as e:
        if e.code >= 500:  # permanent (bad address, policy): retrying cannot help
            raise TerminalError(f"mail refused: {e.code} {e.message}", status_code=422) from e
        raise  # 4xx: the server asks us to try again later; Restate retries
    return EmailReceipt(message_id=msg["Message-ID"])


@email.handler()
async def send(ctx: Context, request: EmailRequest) -> EmailReceipt:
    return await ctx.run_typed("smtp-send", deliver, RunOptions(), request=request)
