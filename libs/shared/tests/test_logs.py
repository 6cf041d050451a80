import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from shop.shared.logs import setup_logging


@pytest.fixture(autouse=True)
def root_logger_restored() -> Iterator[None]:
    """setup_logging binds the root logger to this test's captured stderr, which pytest closes
    after the test: left in place, any later log line (the SMTP server thread of the email
    tests, say) fails with 'I/O operation on closed file'."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_carry_service_and_the_current_trace(capsys) -> None:
    setup_logging("payments", "INFO", "json")
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("step") as span:
        logging.getLogger("shop.test").info("charged %s", "ord_1")
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    context = span.get_span_context()
    assert line["message"] == "charged ord_1" and line["service"] == "payments"
    assert line["trace_id"] == format(context.trace_id, "032x")
    assert line["span_id"] == format(context.span_id, "016x")
    assert line["level"] == "INFO"


def test_lines_outside_a_span_have_no_ids(capsys) -> None:
    setup_logging("gateway", "INFO", "json")
    assert not trace.get_current_span().get_span_context().is_valid
    logging.getLogger("shop.test").warning("no trace here")
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["trace_id"] is None
