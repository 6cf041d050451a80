"""The SREs' Grafana dashboards (deploy/observability/dashboards/*.json): each loads, imports
anywhere (a Prometheus data source picked at import, through the `datasource` variable), has
every panel titled, placed, with a unit and a query, and keeps label sets bounded; promtool
parses every query. tests/e2e/test_dashboard_queries.py runs each one on a live stack."""

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "deploy" / "observability" / "dashboards").glob("*.json"))
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# Grafana's built-in variables a query may use, with what the e2e test puts in their place.
GRAFANA_VARIABLES = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__interval_ms": "15000",
    "__range": "5m",
    "__range_s": "300",
    "__range_ms": "300000",
}
# An order's id (or secret) as a label or a label value: one series per order.
PER_ORDER = re.compile(
    r"\border_(?:id|secret)\s*(?:=~|!~|!=|=)"
    r"|\b(?:by|without|on|ignoring)\s*\([^)]*\border_(?:id|secret)\b"
    r"|\b(?:ord|osec)_[0-9A-Za-z]{6,}"
)


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def panels(dashboard: dict) -> Iterator[dict]:
    """Every panel, rows included, and the panels inside collapsed rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def targets(dashboard: dict) -> Iterator[tuple[dict, dict]]:
    """(panel, target) for every query of the dashboard."""
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            yield panel, target


def promql(expr: str) -> str:
    """A panel's query with Grafana's variables replaced as Grafana would (a variable this
    does not know is an error: the dashboard would need it defined)."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        assert name in GRAFANA_VARIABLES, f"unknown variable ${name} in {expr!r}"
        return GRAFANA_VARIABLES[name]

    return re.sub(r"\$(?:\{(\w+)\}|(\w+))", value, expr)


def test_dashboard_uids_are_unique() -> None:
    assert any(path.name == "shop.json" for path in DASHBOARDS)
    uids = [load(path)["uid"] for path in DASHBOARDS]
    assert all(uids) and len(uids) == len(set(uids)), uids


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_imports_anywhere(path: Path) -> None:
    dashboard = load(path)
    assert dashboard["title"] and re.fullmatch(r"[\w-]{1,40}", dashboard["uid"]), dashboard["uid"]
    assert dashboard["schemaVersion"] >= 39
    assert "id" not in dashboard or dashboard["id"] is None  # Grafana's, per instance
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert "__inputs" not in dashboard  # no data source bound at export


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_panel_is_titled_placed_and_queries_prometheus(path: Path) -> None:
    dashboard = load(path)
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids)), f"panel ids repeated: {ids}"
    boxes: list[tuple[str, dict]] = []
    for panel in panels(dashboard):
        title = panel.get("title")
        assert title, panel
        grid = panel.get("gridPos", {})
        assert all(isinstance(grid.get(k), int) for k in "hwxy"), (title, grid)
        assert grid["w"] > 0 and grid["h"] > 0 and grid["x"] + grid["w"] <= 24, (title, grid)
        if panel["type"] == "row":
            continue
        boxes.append((title, grid))
        assert panel.get("datasource") == DATASOURCE, title
        assert panel.get("fieldConfig", {}).get("defaults", {}).get("unit"), f"{title}: no unit"
        assert panel.get("targets"), f"{title}: no query"
        ref_ids = [target.get("refId") for target in panel["targets"]]
        assert all(ref_ids) and len(ref_ids) == len(set(ref_ids)), (title, ref_ids)
        for target in panel["targets"]:
            assert target.get("datasource") == DATASOURCE, (title, target)
            assert target.get("expr", "").strip(), (title, target)
    for n, (title, a) in enumerate(boxes):  # no panel drawn over another
        for other, b in boxes[n + 1 :]:
            apart = (
                a["x"] + a["w"] <= b["x"]
                or b["x"] + b["w"] <= a["x"]
                or a["y"] + a["h"] <= b["y"]
                or b["y"] + b["h"] <= a["y"]
            )
            assert apart, f"{title!r} and {other!r} overlap"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_no_query_is_per_order(path: Path) -> None:
    for panel, target in targets(load(path)):
        assert not PER_ORDER.search(target["expr"]), (panel["title"], target["expr"])


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_promtool_parses_every_query(path: Path, tmp_path: Path) -> None:
    """promtool has no offline `query`; each expression, as a recording rule, is parsed by
    `promtool check rules`."""
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool not found: `./task apt` installs it (Debian's prometheus)")
    rules = [
        {"record": f"dashboard:panel_{p['id']}_{t['refId']}", "expr": promql(t["expr"])}
        for p, t in targets(load(path))
    ]
    assert rules
    rule_file = tmp_path / "dashboard_rules.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": path.stem, "rules": rules}]}))
    run = subprocess.run(
        [found, "check", "rules", str(rule_file)], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, f"promtool check rules:\n{run.stdout}\n{run.stderr}"
