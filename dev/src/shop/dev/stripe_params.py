"""Reading a request's parameters as Stripe does, and Stripe's error answer (StripeError: its
status and `error` body)."""

from typing import Any

from starlette.responses import JSONResponse


class StripeError(Exception):
    def __init__(self, status: int, type_: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.body = status, {"type": type_, "message": message, **extra}

    def response(self) -> JSONResponse:
        """Stripe's answer to it: its status, and the error under `error`."""
        return JSONResponse({"error": self.body}, status_code=self.status)


def as_int(params: dict[str, Any], name: str) -> int:
    try:
        value = int(params[name])
    except KeyError:
        raise StripeError(
            400, "invalid_request_error", f"Missing required param: {name}.", param=name
        ) from None
    except ValueError:
        raise StripeError(
            400, "invalid_request_error", f"Invalid integer: {params[name]}", param=name
        ) from None
    if value < 1:
        raise StripeError(
            400, "invalid_request_error", f"Invalid {name}: must be at least 1", param=name
        )
    return value


def timestamp(value: Any, param: str) -> int:
    """Unix seconds, as Stripe reads a time in a request (`param`: its name there)."""
    try:
        return int(value)
    except (TypeError, ValueError):
        raise StripeError(
            400, "invalid_request_error", f"Invalid integer: {value}", param=param
        ) from None


def flag(params: dict[str, Any], name: str) -> bool:
    return str(params.get(name, "false")).lower() == "true"


def missing(name: str) -> str:
    raise StripeError(400, "invalid_request_error", f"Missing required param: {name}.", param=name)
