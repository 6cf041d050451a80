"""The Stripe emulator's stand-in for a bank's 3-D Secure page: where `next_action.
redirect_to_url.url` sends the customer to confirm (or fail) a payment. Plain HTML forms, so
a browser test or a person can press the buttons without any script."""

from html import escape
from typing import Any

# Currencies Stripe counts in whole units (no cents).
ZERO_DECIMAL = {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx"}
ZERO_DECIMAL |= {"vnd", "vuv", "xaf", "xof", "xpf"}

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 28rem; margin: 4rem auto; padding: 0 1rem;
       color: #1a1f36; }
.card { border: 1px solid #e3e8ee; border-radius: 8px; padding: 1.5rem; }
.amount { font-size: 1.6rem; font-weight: 600; margin: .5rem 0 1rem; }
form { display: inline-block; margin-right: .5rem; }
button { font-size: 1rem; padding: .6rem 1.4rem; border-radius: 6px; border: 1px solid #ccc;
         cursor: pointer; }
button.complete { background: #635bff; color: white; border-color: #635bff; }
.muted { color: #697386; font-size: .9rem; }
"""


def amount_text(intent: dict[str, Any]) -> str:
    currency = str(intent["currency"])
    amount = int(intent["amount"])
    if currency in ZERO_DECIMAL:
        return f"{amount} {currency.upper()}"
    return f"{amount / 100:.2f} {currency.upper()}"


def html_page(title: str, body: str) -> str:
    return (
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>"
        f"<body><div class='card'>{body}</div></body></html>\n"
    )


def confirm_page(intent: dict[str, Any]) -> str:
    pi = escape(intent["id"])
    return html_page(
        "Confirm the payment with your bank",
        "<h1>Confirm the payment with your bank</h1>"
        f"<p class='amount' id='amount'>{escape(amount_text(intent))}</p>"
        f"<p class='muted'>3-D Secure test page of the Stripe emulator · {pi}</p>"
        f"<form method='post' action='/3ds/{pi}/complete'>"
        "<button class='complete' type='submit' name='outcome' value='complete'>Complete</button>"
        "</form>"
        f"<form method='post' action='/3ds/{pi}/fail'>"
        "<button class='fail' type='submit' name='outcome' value='fail'>Fail</button></form>",
    )


def outcome_page(intent: dict[str, Any], outcome: str) -> str:
    if outcome == "complete":
        title, text = "Payment authenticated", "Payment authenticated."
    else:
        title, text = "Authentication failed", "Payment authentication failed."
    return html_page(
        title,
        f"<h1>{title}</h1><p id='outcome'>{text} You can close this page and go back to "
        "the shop.</p>"
        f"<p class='muted'>{escape(intent['id'])} · {escape(amount_text(intent))}</p>",
    )


def done_page(intent: dict[str, Any]) -> str:
    """The page for an intent that no longer waits for authentication (nothing changes)."""
    return html_page(
        "Already done",
        "<h1>Nothing left to confirm</h1>"
        f"<p id='outcome'>This payment is already done: its status is "
        f"<code>{escape(intent['status'])}</code>. You can close this page and go back to "
        "the shop.</p>"
        f"<p class='muted'>{escape(intent['id'])} · {escape(amount_text(intent))}</p>",
    )


def unknown_page(intent_id: str) -> str:
    return html_page(
        "Unknown payment",
        f"<h1>Unknown payment</h1><p>There is no payment <code>{escape(intent_id)}</code>.</p>",
    )
