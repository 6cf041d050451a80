"""OpenTelemetry for every shop process, configured only by the standard OTEL_* variables.

- OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES name the process (the resource);
- OTEL_EXPORTER_OTLP_ENDPOINT (or the per-signal _TRACES_ / _METRICS_ endpoints) turns
  export on; with none set nothing is exported;
- OTEL_EXPORTER_OTLP_PROTOCOL picks `grpc` or `http/protobuf` (the spec's default).

httpx (Restate ingress) and Valkey/redis calls are traced by their instrumentation
libraries (payments adds aiohttp's, for Stripe); FastAPI by its own (the gateway calls
`instrument_app`). Inside Restate handlers, `step` opens a span under the Restate invocation
attempt that is not opened again when the handler replays, and times the step in the
`shop.step.duration` histogram.
"""

import atexit
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from opentelemetry import metrics, trace
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from restate import Context
from restate.ext.tracing import RestateTracer
from restate.server_context import current_context

ORDER_ID = "shop.order.id"
# At exit, how long what is still buffered may take to reach the collector. Left to itself the
# SDK flushes each signal for up to its exporter's timeout with retries (10 s and more), and a
# collector that is down or slow held every stop of a service that long.
EXIT_FLUSH_SECONDS = 0.5
_propagator = TraceContextTextMapPropagator()
meter = metrics.get_meter("shop")
# Seconds, from a fast step to a customer at their bank (OpenTelemetry's default buckets are
# for milliseconds).
SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900]
step_duration = meter.create_histogram(
    "shop.step.duration",
    unit="s",
    description="How long each side-effecting step took",
    explicit_bucket_boundaries_advisory=SECONDS,
)
handler_attempts = meter.create_counter(
    "shop.handler.attempts",
    description="Restate handler attempts by handler (Service/handler) and outcome: ok, terminal"
    " (a terminal error, answered), error (retried by Restate), suspended (to be resumed)",
)
handler_duration = meter.create_histogram(
    "shop.handler.duration",
    unit="s",
    description="How long each Restate handler attempt ran, by handler",
    explicit_bucket_boundaries_advisory=SECONDS,
)
orders_started = meter.create_counter("shop.orders.started", description="Orders accepted")
orders_finished = meter.create_counter(
    "shop.orders.finished",
    description="Orders that ended, by status (completed/failed/cancelled) and reason",
)
order_duration = meter.create_histogram(
    "shop.order.duration",
    unit="s",
    description="From an order placed to its final status, by status",
    explicit_bucket_boundaries_advisory=SECONDS,
)
stripe_calls = meter.create_counter(
    "shop.stripe.calls",
    description="Calls to Stripe, by operation and result (ok, declined, refused, error)",
)
smtp_sends = meter.create_counter(
    "shop.smtp.sends", description="Mails handed to SMTP, by result (ok, refused, error)"
)
progress_pushes = meter.create_counter(
    "shop.progress.pushes", description="Live progress pushed to Valkey, by result (ok, failed)"
)
sse_connections = meter.create_up_down_counter(
    "shop.sse.connections", description="Live progress streams held open"
)
sse_events = meter.create_counter("shop.sse.events", description="Live progress events sent")
sse_push_lag = meter.create_histogram(
    "shop.sse.push.lag",
    unit="s",
    description="From a workflow reaching a step to the gateway handing it to the order's"
    " live streams (fulfilment's push queue, Valkey, the subscription)",
    explicit_bucket_boundaries_advisory=[
        0.001,
        0.0025,
        0.005,
        0.01,
        0.025,
        0.05,
        0.1,
        0.25,
        0.5,
        1,
        2.5,
        5,
        10,
        30,
    ],
)
orders_rejected = meter.create_counter(
    "shop.orders.rejected",
    description="Orders refused with 429, by reason (overloaded, client_limit)",
)
Counted = metrics.Counter | metrics.UpDownCounter
_zeros: list[tuple[Counted, str, list[str], dict[str, str]]] = []


def counted_from_zero(
    counter: Counted,
    label: str = "",
    values: list[str] | None = None,
    also: dict[str, str] | None = None,
) -> None:
    """Series of this process that exist before their first event, at 0 (one per value of
    `label`, each with the labels `also`; or the one series of an unlabelled counter): an
    alert's rate() over a series that appears only with the first failure would miss that
    failure, and a dashboard's panel would be empty. (Counted once the meter is set up: an
    instrument's adds before that go nowhere.)"""
    _zeros.append((counter, label, values or [""], also or {}))
    if _exit_flush:  # set up already
        _start_from_zero()


def _start_from_zero() -> None:
    while _zeros:
        counter, label, values, also = _zeros.pop()
        for value in values:
            counter.add(0, {**also, label: value} if label else also or None)


discrepancies_found = meter.create_counter(
    "shop.reconciliation.discrepancies",
    description="Differences a reconciliation found between Stripe and the order book, by kind",
)


def otlp_endpoint(signal: str, env: Mapping[str, str]) -> str | None:
    """The OTLP endpoint for a signal (TRACES, METRICS): its own variable, else the shared one."""
    return env.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT") or env.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )


def otlp_protocol(signal: str, env: Mapping[str, str]) -> str:
    return env.get(f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL") or env.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
    )


def _enabled(signal: str) -> bool:
    if os.environ.get(f"OTEL_{signal}_EXPORTER", "otlp").lower() == "none":
        return False
    return bool(otlp_endpoint(signal, os.environ))


def _grpc(signal: str) -> bool:
    return otlp_protocol(signal, os.environ) == "grpc"


class Level1TraceIds(RandomIdGenerator):
    """Random trace ids, announced with W3C Trace Context level 1 flags (`01`, not `03`).
    Restate's ingress, like other level-1 parsers, rejects a traceparent whose flags carry
    the level-2 random-trace-id bit and starts a new trace: the order's trace would break
    in two at the gateway."""

    def is_trace_id_random(self) -> bool:
        return False


def tracing_enabled() -> bool:
    return _enabled("TRACES")


def setup_telemetry(service: str) -> None:
    """Once per process, before any client is created. Traces only when exported: with no
    endpoint the API's no-op tracer stays in place and nothing is instrumented. Metrics
    always, for Prometheus (and over OTLP when an endpoint is set)."""
    os.environ.setdefault("OTEL_SERVICE_NAME", service)
    resource = Resource.create()  # reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
    if tracing_enabled():
        span_exporter: SpanExporter
        if _grpc("TRACES"):
            from opentelemetry.exporter.otlp.proto.grpc import trace_exporter as grpc_traces

            span_exporter = grpc_traces.OTLPSpanExporter()
        else:
            from opentelemetry.exporter.otlp.proto.http import trace_exporter as http_traces

            span_exporter = http_traces.OTLPSpanExporter()
        tracer_provider = TracerProvider(
            resource=resource, id_generator=Level1TraceIds(), shutdown_on_exit=False
        )
        _exit_flush.append(tracer_provider.shutdown)
        tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
        trace.set_tracer_provider(tracer_provider)
        HTTPXClientInstrumentor().instrument()
        RedisInstrumentor().instrument()
    # Metrics always: Prometheus scrapes /metrics (shop.shared.metrics); OTLP too when set.
    readers: list[MetricReader] = [PrometheusMetricReader()]
    if _enabled("METRICS"):
        metric_exporter: MetricExporter
        if _grpc("METRICS"):
            from opentelemetry.exporter.otlp.proto.grpc import metric_exporter as grpc_metrics

            metric_exporter = grpc_metrics.OTLPMetricExporter()
        else:
            from opentelemetry.exporter.otlp.proto.http import metric_exporter as http_metrics

            metric_exporter = http_metrics.OTLPMetricExporter()
        readers.append(PeriodicExportingMetricReader(metric_exporter))
    meter_provider = MeterProvider(
        resource=resource, metric_readers=readers, shutdown_on_exit=False
    )
    metrics.set_meter_provider(meter_provider)
    _exit_flush.append(meter_provider.shutdown)
    _start_from_zero()
    if _exit_flush:
        atexit.register(flush_at_exit)


_exit_flush: list[Callable[[], object]] = []


def flush_at_exit(seconds: float = EXIT_FLUSH_SECONDS) -> None:
    """Send the spans and metrics still buffered, but hold the process at most `seconds`:
    what has not reached the collector by then is dropped (the exporters' threads are
    daemons and end with the process). Once: a second call does nothing."""
    deadline = time.monotonic() + seconds
    flushing = [threading.Thread(target=flush, daemon=True) for flush in _exit_flush]
    _exit_flush.clear()
    for thread in flushing:  # traces and metrics side by side
        thread.start()
    for thread in flushing:
        thread.join(max(0.0, deadline - time.monotonic()))


def current_ids() -> tuple[str | None, str | None]:
    """The current trace and span ids, hex, for log lines and links: the current span's, or
    inside a Restate handler outside any span of ours, the invocation attempt's."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid and (handler := _restate_handler()) is not None:
        attempt = _propagator.extract(handler.request().attempt_headers)
        context = trace.get_current_span(attempt).get_span_context()
    if not context.is_valid:
        return None, None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def _restate_handler() -> Context | None:
    try:
        return current_context()
    except LookupError:  # not inside a Restate invocation
        return None


@contextmanager
def step(name: str, order_id: str | None, **attributes: str) -> Iterator[trace.Span]:
    """A span for one step of an order (or of no one order: None), under the Restate
    invocation attempt (never opened twice: a replaying handler gets a no-op span), timed into
    `shop.step.duration`. Attributes carry ids only, never personal data."""
    tracer = RestateTracer(trace.get_tracer("shop"))
    started = time.perf_counter()
    if order_id is not None:
        attributes = {ORDER_ID: order_id, **attributes}
    try:
        with tracer.start_as_current_span(name, attributes=attributes) as span:
            yield span
    finally:
        step_duration.record(time.perf_counter() - started, {"step": name})
