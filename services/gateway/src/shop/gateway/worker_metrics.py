"""/metrics of a gateway with several worker processes (GATEWAY_WORKERS > 1). The workers share
one port, so a scrape reaches one of them, and each counts only what it served. So each worker
also answers with its own series on a Unix socket in a folder they share, and the worker that
gets the scrape adds up every worker's series: one target per gateway, whose counters count
all its requests (prometheus_client's multiprocess mode does the same for its own metric
types, which the OpenTelemetry reader's are not).

How series add up: counters, histograms and gauges (streams held, CPU seconds, memory) are
summed; a start time is the earliest; an `_info` series or a limit is the same everywhere."""

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

log = logging.getLogger(__name__)
# The shared folder: set by the gateway's main process for its workers, which inherit it.
FOLDER_ENV = "SHOP_GATEWAY_METRICS_DIR"
READ_TIMEOUT_SECONDS = 1.0
EARLIEST = ("_created", "_start_time_seconds")
SAME_EVERYWHERE = ("_info", "_max_fds", "_max_bytes")


def folder() -> Path | None:
    value = os.environ.get(FOLDER_ENV)
    return Path(value) if value else None


@contextlib.asynccontextmanager
async def serving_own_series(shared: Path) -> AsyncIterator[None]:
    """While the worker runs: its own series, to whichever worker asks, on its socket."""
    path = shared / f"{os.getpid()}.sock"

    async def answer(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            writer.write(generate_latest(REGISTRY))
            await writer.drain()
        writer.close()

    server = await asyncio.start_unix_server(answer, path)
    try:
        yield
    finally:
        server.close()
        path.unlink(missing_ok=True)


async def read_worker(path: Path) -> str | None:
    """One other worker's series; None if it does not answer in time."""
    try:
        async with asyncio.timeout(READ_TIMEOUT_SECONDS):
            reader, writer = await asyncio.open_unix_connection(path)
            data = await reader.read()  # it closes when all is written
            writer.close()
            return data.decode()
    except (ConnectionRefusedError, FileNotFoundError):
        # A worker that died left its socket behind. (A local folder: no I/O worth a thread.)
        path.unlink(missing_ok=True)  # noqa: ASYNC240
        return None
    except (OSError, TimeoutError) as e:
        log.warning("metrics of gateway worker %s not read: %s", path.stem, e)
        return None


async def all_workers(shared: Path) -> bytes:
    """Every worker's series, added up (this worker's read directly)."""
    own = f"{os.getpid()}.sock"
    others = [p for p in shared.glob("*.sock") if p.name != own]  # noqa: ASYNC240 (as above)
    texts = await asyncio.gather(*(read_worker(p) for p in others))
    return added_up([generate_latest(REGISTRY).decode(), *(t for t in texts if t)])


def added_up(texts: Iterable[str]) -> bytes:
    families: dict[str, Metric] = {}
    values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
            families.setdefault(family.name, family)
            into = values.setdefault(family.name, {})
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                into[key] = combined(sample.name, into.get(key), sample.value)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families, values))
    return generate_latest(registry)


def combined(name: str, before: float | None, value: float) -> float:
    if before is None:
        return value
    if name.endswith(EARLIEST):
        return min(before, value)
    if name.endswith(SAME_EVERYWHERE):
        return max(before, value)
    return before + value


class _Families:
    def __init__(
        self,
        families: dict[str, Metric],
        values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]],
    ) -> None:
        self.families, self.values = families, values

    def collect(self) -> Iterable[Metric]:
        for name, family in self.families.items():
            merged = Metric(name, family.documentation, family.type, family.unit)
            merged.samples = [
                Sample(sample, dict(labels), value)
                for (sample, labels), value in self.values[name].items()
            ]
            yield merged
