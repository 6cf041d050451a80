"""Two workers' series, added up as one gateway's: counters, histograms and gauges summed,
start times the earliest, limits and info series as they are; and over real sockets."""

import asyncio
import os
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from shop.gateway import worker_metrics

WORKER_1 = """\
# HELP shop_orders_started_total Orders accepted
# TYPE shop_orders_started_total counter
shop_orders_started_total 3.0
# HELP shop_sse_push_lag_seconds lag
# TYPE shop_sse_push_lag_seconds histogram
shop_sse_push_lag_seconds_bucket{le="0.01"} 2.0
shop_sse_push_lag_seconds_bucket{le="+Inf"} 3.0
shop_sse_push_lag_seconds_count 3.0
shop_sse_push_lag_seconds_sum 0.5
# HELP shop_sse_connections streams held
# TYPE shop_sse_connections gauge
shop_sse_connections 4.0
# HELP process_start_time_seconds Start time
# TYPE process_start_time_seconds gauge
process_start_time_seconds 1000.0
# HELP process_max_fds Maximum number of open file descriptors.
# TYPE process_max_fds gauge
process_max_fds 1024.0
# HELP target_info Target metadata
# TYPE target_info gauge
target_info{service_name="gateway"} 1.0
"""
WORKER_2 = """\
# HELP shop_orders_started_total Orders accepted
# TYPE shop_orders_started_total counter
shop_orders_started_total 5.0
# HELP shop_orders_rejected_total 429s
# TYPE shop_orders_rejected_total counter
shop_orders_rejected_total{reason="overloaded"} 1.0
# HELP shop_sse_push_lag_seconds lag
# TYPE shop_sse_push_lag_seconds histogram
shop_sse_push_lag_seconds_bucket{le="0.01"} 1.0
shop_sse_push_lag_seconds_bucket{le="+Inf"} 4.0
shop_sse_push_lag_seconds_count 4.0
shop_sse_push_lag_seconds_sum 2.0
# HELP shop_sse_connections streams held
# TYPE shop_sse_connections gauge
shop_sse_connections 1.0
# HELP process_start_time_seconds Start time
# TYPE process_start_time_seconds gauge
process_start_time_seconds 900.0
# HELP process_max_fds Maximum number of open file descriptors.
# TYPE process_max_fds gauge
process_max_fds 1024.0
# HELP target_info Target metadata
# TYPE target_info gauge
target_info{service_name="gateway"} 1.0
"""


def samples(exposition: bytes) -> dict[tuple[str, tuple], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(exposition.decode())
        for s in family.samples
    }


def test_two_workers_add_up_to_one_gateway() -> None:
    got = samples(worker_metrics.added_up([WORKER_1, WORKER_2]))
    assert got[("shop_orders_started_total", ())] == 8
    assert got[("shop_orders_rejected_total", (("reason", "overloaded"),))] == 1
    assert got[("shop_sse_push_lag_seconds_bucket", (("le", "0.01"),))] == 3
    assert got[("shop_sse_push_lag_seconds_bucket", (("le", "+Inf"),))] == 7
    assert got[("shop_sse_push_lag_seconds_count", ())] == 7
    assert got[("shop_sse_push_lag_seconds_sum", ())] == 2.5
    assert got[("shop_sse_connections", ())] == 5
    assert got[("process_start_time_seconds", ())] == 900
    assert got[("process_max_fds", ())] == 1024
    assert got[("target_info", (("service_name", "gateway"),))] == 1


def test_one_worker_is_itself() -> None:
    assert samples(worker_metrics.added_up([WORKER_1])) == samples(WORKER_1.encode())


def test_the_scraped_worker_reads_the_others_and_forgets_the_dead(tmp_path: Path) -> None:
    async def scrape() -> bytes:
        other = tmp_path / "1.sock"

        async def answer(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(WORKER_2.encode())
            await writer.drain()
            writer.close()

        server = await asyncio.start_unix_server(answer, other)
        dead = tmp_path / "2.sock"  # a worker that died: its socket, no one listening
        (await asyncio.start_unix_server(answer, dead)).close()
        async with server, worker_metrics.serving_own_series(tmp_path):
            assert (tmp_path / f"{os.getpid()}.sock").exists()
            series = await worker_metrics.all_workers(tmp_path)
        assert not dead.exists()
        assert not (tmp_path / f"{os.getpid()}.sock").exists()  # gone with its worker
        return series

    got = samples(asyncio.run(scrape()))
    # this process's own registry has no such series: all 5 are the other worker's
    assert got[("shop_orders_rejected_total", (("reason", "overloaded"),))] == 1
    assert ("process_start_time_seconds", ()) in got
