"""The SREs' alert rules (deploy/observability): promtool checks the Prometheus config and the
rules and runs the rules' unit tests; every alert waits (`for`), has a severity, links a
section of docs/runbook.md that exists, and is tested both firing and quiet."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
OBSERVABILITY = ROOT / "deploy" / "observability"
RULES = OBSERVABILITY / "alerts.yml"
RULE_TESTS = OBSERVABILITY / "alerts_test.yml"
RUNBOOK = ROOT / "docs" / "runbook.md"


def promtool(*args: str) -> None:
    """Runs promtool in deploy/observability; fails with its output unless it succeeds."""
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool not found: `./task apt` installs it (Debian's prometheus)")
    run = subprocess.run(
        [found, *args], cwd=OBSERVABILITY, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, f"promtool {' '.join(args)}:\n{run.stdout}\n{run.stderr}"


@pytest.mark.parametrize(
    "args",
    [
        ("check", "config", "prometheus.yml"),
        ("check", "rules", "alerts.yml"),
        ("test", "rules", "alerts_test.yml"),
    ],
    ids=["check-config", "check-rules", "test-rules"],
)
def test_promtool(args: tuple[str, ...]) -> None:
    promtool(*args)


def alerts() -> list[dict]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def github_anchor(heading: str) -> str:
    """The id GitHub gives a Markdown heading: lower case, punctuation dropped, spaces to -."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_alert_waits_has_a_severity_and_a_runbook_section() -> None:
    text = re.sub(r"^```.*?^```", "", RUNBOOK.read_text(), flags=re.M | re.S)  # no code
    anchors = {github_anchor(m.group(1)) for m in re.finditer(r"^#+\s+(.+)$", text, re.M)}
    assert alerts()
    for rule in alerts():
        name = rule["alert"]
        assert rule.get("for"), f"{name}: no `for`"
        assert rule.get("labels", {}).get("severity") in ("page", "ticket"), name
        annotations = rule.get("annotations", {})
        assert annotations.get("summary") and annotations.get("description"), name
        url = annotations.get("runbook_url", "")
        assert url.startswith("docs/runbook.md#"), f"{name}: runbook_url {url!r}"
        assert url.split("#", 1)[1] in anchors, f"{name}: no heading for {url} in the runbook"


def test_every_alert_is_tested_firing_and_quiet() -> None:
    """For each alert a case where it fires, and a test group whose series keep it quiet."""
    groups = [
        group.get("alert_rule_test", [])
        for group in yaml.safe_load(RULE_TESTS.read_text())["tests"]
    ]
    for name in (rule["alert"] for rule in alerts()):
        mine = [[case for case in group if case["alertname"] == name] for group in groups]
        assert any(case.get("exp_alerts") for cases in mine for case in cases), (
            f"{name}: no test where it fires"
        )
        assert any(cases and not any(c.get("exp_alerts") for c in cases) for cases in mine), (
            f"{name}: no test group where it stays quiet"
        )
