"""The dev stack's Prometheus (Debian's `prometheus`, installed by `./task apt`): it scrapes
every service's /metrics and each Restate node's, and evaluates the alert rules of
deploy/observability/alerts.yml, as compose's and k8s's do."""

import shutil
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[4]
ALERT_RULES = REPO / "deploy" / "observability" / "alerts.yml"
# Shorter than production's 15 s: a developer (and a test) sees a change within seconds.
SCRAPE_SECONDS = 5


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        raise FileNotFoundError("prometheus is not installed: `./task apt` installs it")
    return found


def config(services: dict[str, int], restate_metrics: list[int]) -> str:
    """Scrape configuration: job `shop` (one target per service, labelled `service`), job
    `restate` (each node's metrics port), and the alert rules."""
    every = f"{SCRAPE_SECONDS}s"
    shop = [
        {"targets": [f"127.0.0.1:{port}"], "labels": {"service": name}}
        for name, port in services.items()
    ]
    restate = [{"targets": [f"127.0.0.1:{port}" for port in restate_metrics]}]
    document = {
        "global": {"scrape_interval": every, "evaluation_interval": every},
        "rule_files": [str(ALERT_RULES)],
        "scrape_configs": [
            {"job_name": "shop", "static_configs": shop},
            {"job_name": "restate", "static_configs": restate},
        ],
    }
    return yaml.safe_dump(document, sort_keys=False)


def command(config_file: Path, data: Path, port: int) -> list[str]:
    return [
        prometheus_binary(),
        f"--config.file={config_file}",
        f"--storage.tsdb.path={data}",
        "--storage.tsdb.retention.time=2d",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
