"""The faults a test switches on in the Stripe emulator (PUT /_emulator/faults): a slow, failing
or dropping API, and late or doubled webhook events. Each switch counts down."""

from pydantic import BaseModel, Field

from shop.dev.stripe_webhooks import WebhookFaults


class Faults(BaseModel):
    """Switchable faults for the next calls to /v1 (tests set them through /_emulator/faults)."""

    fail_next: int = Field(0, ge=0, description="answer 500 without doing anything")
    drop_next: int = Field(0, ge=0, description="do the work, then drop the connection unanswered")
    latency_next: int = Field(0, ge=0, description="delay these many calls by latency_ms")
    latency_ms: int = Field(0, ge=0)
    webhook_duplicate_next: int = Field(0, ge=0, description="deliver the next events twice")
    webhook_delay_next: int = Field(
        0, ge=0, description="hold the next events webhook_delay_ms before the first attempt"
    )
    webhook_delay_ms: int = Field(0, ge=0)

    def take_webhook_faults(self) -> WebhookFaults:
        """What applies to the next event delivered (each switch counts down)."""
        taken = WebhookFaults()
        if self.webhook_duplicate_next:
            self.webhook_duplicate_next -= 1
            taken.duplicate = True
        if self.webhook_delay_next:
            self.webhook_delay_next -= 1
            taken.delay_ms = self.webhook_delay_ms
        return taken
