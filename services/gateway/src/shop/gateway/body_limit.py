"""A size limit on every request body, so that no client can make the gateway hold more than
that in memory: checked on Content-Length before anything is read, and counted as a streamed
(chunked) body arrives. Beyond it the answer is 413 and nothing was started.

Behind a front proxy, set the same limits there too (nginx `client_max_body_size`, see
docs/architecture.md, "Security"): it refuses the body before it crosses the network to the
gateway."""

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# An order, a form post, an admin change: a few hundred bytes; 64 KiB leaves room for any
# real one (the order API takes at most 20 lines).
DEFAULT_MAX_BYTES = 64 * 1024
# Stripe's events are tens of KB at most.
WEBHOOK_MAX_BYTES = 1024 * 1024


def max_bytes(path: str) -> int:
    return WEBHOOK_MAX_BYTES if path.startswith("/webhooks/") else DEFAULT_MAX_BYTES


def too_large(limit: int) -> str:
    return f"request body too large: at most {limit} bytes"


class BodyLimit:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = max_bytes(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await JSONResponse({"error": too_large(limit)}, status_code=413)(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # FastAPI passes an HTTPException raised while it reads the body on to the
                    # app's handler for it (errors.py), which answers with its status.
                    raise HTTPException(413, too_large(limit))
            return message

        await self.app(scope, counted, send)
