"""Email: sends the customer's mail over SMTP as one journaled step."""

import aiosmtplib
import restate
from restate import Context, RunOptions, TerminalError

from shop.email.messages import compose
from shop.email.settings import settings
from shop.email.smtp_pool import SmtpPool
from shop.shared import names
from shop.shared.contracts.email import EmailReceipt, EmailRequest
from shop.shared.crash import crash_point
from shop.shared.telemetry import counted_from_zero, smtp_sends, step

# Only the workflows send mail. A mail server that keeps failing pauses the send.
email = restate.Service(
    names.EMAIL, ingress_private=True, invocation_retry_policy=settings.pause_when_stuck
)
counted_from_zero(smtp_sends, "result", ["ok", "refused", "error"])
smtp = SmtpPool(settings.smtp_host, settings.smtp_port, settings.smtp_timeout_seconds)


async def deliver(request: EmailRequest) -> EmailReceipt:
    """Sends the mail, counted by result: refused for good (a terminal error), or not now
    (anything else: Restate retries)."""
    try:
        receipt = await send_once(request)
    except TerminalError:
        smtp_sends.add(1, {"result": "refused"})
        raise
    except Exception:
        smtp_sends.add(1, {"result": "error"})
        raise
    smtp_sends.add(1, {"result": "ok"})
    return receipt


async def send_once(request: EmailRequest) -> EmailReceipt:
    try:
        msg = compose(request, settings.mail_from)
    except ValueError as e:
        raise TerminalError(f"mail not sent: {e}", status_code=422) from e
    try:
        # No SMTP instrumentation library exists: this span is the SMTP call. It names the
        # order and the kind of mail, never the address.
        with step("smtp send", request.order_id, **{"shop.email.kind": request.kind}):
            async with smtp.connection() as connection:
                await connection.send_message(msg)
    except aiosmtplib.SMTPNotSupported as e:
        # A local part in Unicode, and a server without SMTPUTF8: no retry can change that.
        raise TerminalError(f"mail not sent: {e}", status_code=422) from e
    except aiosmtplib.SMTPRecipientsRefused as e:
        if all(r.code >= 500 for r in e.recipients):
            raise TerminalError(f"mail refused: {e.recipients[0].message}", 422) from e
        raise  # 4xx: try again later; Restate retries
    except aiosmtplib.SMTPResponseException as e:
        if e.code >= 500:  # permanent (policy, bad address): retrying cannot help
            raise TerminalError(f"mail refused: {e.code} {e.message}", status_code=422) from e
        raise
    crash_point("email-after-send")
    return EmailReceipt(message_id=msg["Message-ID"])


@email.handler()
async def send(ctx: Context, request: EmailRequest) -> EmailReceipt:
    """One message per order and kind; its Message-ID is stable across retries."""
    return await ctx.run_typed("smtp-send", deliver, RunOptions(), request=request)
