"""The order page's list of steps, derived from the order's latest progress."""

from dataclasses import dataclass

from shop.shared.contracts.fulfilment import OrderStatus, Step

# Every step a run reports on its way to `completed`, with what the customer reads.
STEPS: tuple[tuple[Step, str], ...] = (
    ("received", "Order received"),
    ("authenticating", "Confirm the payment with your bank"),
    ("authorized", "Payment held on your card"),
    ("reserved", "Stock reserved (cancellable)"),
    ("capturing", "Cancellation window closed"),
    ("charged", "Payment captured"),
    ("completed", "Confirmation emailed"),
)
STEP_INDEX: dict[Step, int] = {key: i for i, (key, _) in enumerate(STEPS)}
# Steps only some orders take (3-D Secure): listed only while the order waits at one.
OPTIONAL: frozenset[Step] = frozenset({"authenticating"})


@dataclass(frozen=True)
class TimelineStep:
    label: str
    state: str  # done | current | todo | failed | cancelled


def timeline(status: OrderStatus) -> list[TimelineStep]:
    final = status.is_final
    reached = status.result.last_step if final and status.result else status.step
    last = STEP_INDEX.get(reached, -1) if reached else -1
    waiting = not final and reached in OPTIONAL  # for the customer: that step is the current one
    steps: list[TimelineStep] = []
    for i, (key, label) in enumerate(STEPS):
        if key in OPTIONAL and not (waiting and i == last):
            continue
        if status.status == "completed" or i < last or (i == last and not waiting):
            steps.append(TimelineStep(label, "done"))
        elif not final:
            current = i == last if waiting else i == last + 1
            steps.append(TimelineStep(label, "current" if current else "todo"))
    if final and status.status != "completed":
        reason = status.result.reason if status.result else status.message
        undone = "; what was done is undone" if last > 0 else ""
        steps.append(TimelineStep(f"{status.status.capitalize()}: {reason}{undone}", status.status))
    return steps
