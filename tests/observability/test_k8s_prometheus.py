"""The Kubernetes Prometheus (deploy/k8s/base/prometheus, deploy/observability/prometheus.k8s.yml).
There is no API server here, so each overlay is rendered with kustomize and its pod templates
stand in for the pods: relabelled as Prometheus's pod discovery would, they must give the same
targets (job, service, port) as compose's prometheus.yml, and the NetworkPolicies must let
Prometheus reach each of them. The ConfigMaps must be deploy/observability's files as they are,
and promtool must accept the scrape config."""

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
OBSERVABILITY = ROOT / "deploy" / "observability"
RULES = OBSERVABILITY / "alerts.yml"
COMPOSE_CONFIG = OBSERVABILITY / "prometheus.yml"
K8S_CONFIG = OBSERVABILITY / "prometheus.k8s.yml"
OVERLAYS = ROOT / "deploy" / "k8s" / "overlays"
NAMESPACE = "shop"
WORKLOADS = ("Deployment", "StatefulSet", "Job")


def tool(name: str) -> str:
    """A tool from the project's virtualenv (kubectl) or the PATH (promtool)."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} not found (`./task sync` installs kubectl, `./task apt` promtool)")
    return found


@pytest.fixture(scope="module", params=["local", "production"])
def rendered(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    run = subprocess.run(
        [tool("kubectl"), "kustomize", str(OVERLAYS / request.param)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    return [doc for doc in yaml.safe_load_all(run.stdout) if doc]


def one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} rendered"
    return found[0]


# ---------------------------------------------------------------- promtool


def test_promtool_checks_the_k8s_config(tmp_path: Path) -> None:
    """promtool check config, as for prometheus.yml. Debian's promtool (the one here) is built
    without Kubernetes discovery and refuses `kubernetes_sd_configs` as an unknown field; then
    it checks the rest (relabelling, rule files) with static targets in its place, and the
    discovery blocks are held to the fields Prometheus 2.42 knows."""
    promtool = tool("promtool")
    run = subprocess.run(
        [promtool, "check", "config", K8S_CONFIG.name],
        cwd=OBSERVABILITY,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if run.returncode == 0:
        return
    output = run.stdout + run.stderr
    assert "field kubernetes_sd_configs not found" in output, output

    document = yaml.safe_load(K8S_CONFIG.read_text())
    for job in document["scrape_configs"]:
        for sd in job.pop("kubernetes_sd_configs", []):
            assert set(sd) <= {"role", "namespaces", "selectors"}, sd
            assert sd["role"] == "pod", sd
            assert set(sd.get("namespaces", {})) <= {"own_namespace", "names"}, sd
            job["static_configs"] = [{"targets": ["pod.invalid:80"]}]
    for rule_file in document["rule_files"]:
        shutil.copy(OBSERVABILITY / rule_file, tmp_path / rule_file)
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(document, sort_keys=False))
    run = subprocess.run(
        [promtool, "check", "config", "prometheus.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr}"


# ---------------------------------------------------------------- the ConfigMaps


def test_the_configmaps_are_the_files_of_deploy_observability(
    rendered: list[dict[str, Any]],
) -> None:
    """One copy of the rules: the ConfigMaps hold alerts.yml and prometheus.k8s.yml as they
    are, mounted in one directory, the one the config file is read from."""
    deployment = one(rendered, "Deployment", "prometheus")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    config_file = next(
        a.split("=", 1)[1] for a in container["args"] if a.startswith("--config.file=")
    )
    mount = next(m for m in container["volumeMounts"] if m["name"] == "config")
    assert Path(config_file).parent == Path(mount["mountPath"])
    volume = next(v for v in pod["volumes"] if v["name"] == "config")
    names = [source["configMap"]["name"] for source in volume["projected"]["sources"]]
    maps = {
        d["metadata"]["name"]: d["data"]
        for d in rendered
        if d["kind"] == "ConfigMap" and d["metadata"]["name"] in names
    }
    files = {key: text for data in maps.values() for key, text in data.items()}
    assert len(files) == sum(len(data) for data in maps.values()), "a file in two ConfigMaps"
    assert files[Path(config_file).name] == K8S_CONFIG.read_text()
    assert files["alerts.yml"] == RULES.read_text()
    for rule_file in yaml.safe_load(K8S_CONFIG.read_text())["rule_files"]:
        assert rule_file in files, f"rule_files: {rule_file} is not in the mounted directory"


# ---------------------------------------------------------------- targets


def relabel(labels: dict[str, str], configs: list[dict[str, Any]]) -> dict[str, str] | None:
    """Prometheus's relabelling (keep, drop, replace), enough for prometheus.k8s.yml."""
    labels = dict(labels)
    for config in configs:
        action = config.get("action", "replace")
        separator = config.get("separator", ";")
        value = separator.join(labels.get(s, "") for s in config.get("source_labels", []))
        match = re.fullmatch(f"(?:{config.get('regex', '(.*)')})", value)
        if action == "keep":
            if match is None:
                return None
        elif action == "drop":
            if match is not None:
                return None
        elif action == "replace":
            if match is not None:
                template = re.sub(r"\$\{?(\w+)\}?", r"\\g<\1>", config.get("replacement", "$1"))
                result = match.expand(template)
                if result:
                    labels[config["target_label"]] = result
                else:
                    labels.pop(config["target_label"], None)
        else:
            pytest.fail(f"relabel action {action!r} is not simulated here")
    return labels


def pods(rendered: list[dict[str, Any]], phase: str = "Running") -> list[dict[str, Any]]:
    """The pods each workload makes (its replicas), as name, labels and containers."""
    made: list[dict[str, Any]] = []
    for workload in (d for d in rendered if d["kind"] in WORKLOADS):
        name = workload["metadata"]["name"]
        template = workload["spec"]["template"]
        replicas = 1 if workload["kind"] == "Job" else workload["spec"].get("replicas", 1)
        for i in range(replicas):
            pod_name = f"{name}-{i}" if workload["kind"] == "StatefulSet" else f"{name}-x{i}"
            made.append(
                {
                    "name": pod_name,
                    "labels": template["metadata"].get("labels", {}),
                    "containers": template["spec"]["containers"],
                    "phase": phase,
                    "ip": f"10.0.0.{len(made) + 1}",
                }
            )
    return made


def discovered(pod: dict[str, Any]) -> list[dict[str, str]]:
    """What pod discovery (role pod) gives for one pod: one target per container port, one
    for a container without ports."""
    common = {
        "__meta_kubernetes_namespace": NAMESPACE,
        "__meta_kubernetes_pod_name": pod["name"],
        "__meta_kubernetes_pod_phase": pod["phase"],
        "__meta_kubernetes_pod_ip": pod["ip"],
    }
    for key, value in pod["labels"].items():
        name = re.sub(r"[^a-zA-Z0-9_]", "_", key)
        common[f"__meta_kubernetes_pod_label_{name}"] = value
        common[f"__meta_kubernetes_pod_labelpresent_{name}"] = "true"
    targets = []
    for container in pod["containers"]:
        ports = container.get("ports") or [None]
        for port in ports:
            target = dict(common, __meta_kubernetes_pod_container_name=container["name"])
            if port is None:
                target["__address__"] = pod["ip"]
            else:
                target["__address__"] = f"{pod['ip']}:{port['containerPort']}"
                target["__meta_kubernetes_pod_container_port_name"] = port.get("name", "")
                target["__meta_kubernetes_pod_container_port_number"] = str(port["containerPort"])
                target["__meta_kubernetes_pod_container_port_protocol"] = port.get(
                    "protocol", "TCP"
                )
            targets.append(target)
    return targets


def scraped(rendered: list[dict[str, Any]], phase: str = "Running") -> list[dict[str, Any]]:
    """The targets of prometheus.k8s.yml's discovered jobs: their labels, the port, the pod."""
    config = yaml.safe_load(K8S_CONFIG.read_text())
    result = []
    for job in config["scrape_configs"]:
        if "kubernetes_sd_configs" not in job:
            continue
        for pod in pods(rendered, phase):
            for meta in discovered(pod):
                labels = relabel(meta, job.get("relabel_configs", []))
                if labels is None:
                    continue
                address = labels["__address__"]
                labels.setdefault("instance", address)
                labels["job"] = job["job_name"]
                result.append(
                    {
                        "labels": {k: v for k, v in labels.items() if not k.startswith("__")},
                        "port": int(address.rsplit(":", 1)[1]),
                        "pod": pod,
                    }
                )
    return result


def compose_targets() -> set[tuple[str, str | None, int]]:
    """(job, service, port) of every target of compose's prometheus.yml but itself."""
    expected = set()
    for job in yaml.safe_load(COMPOSE_CONFIG.read_text())["scrape_configs"]:
        if job["job_name"] == "prometheus":
            continue
        for group in job["static_configs"]:
            for target in group["targets"]:
                service = group.get("labels", {}).get("service")
                expected.add((job["job_name"], service, int(target.rsplit(":", 1)[1])))
    return expected


def test_every_process_is_scraped_with_the_labels_of_compose(
    rendered: list[dict[str, Any]],
) -> None:
    """Every pod of the gateway, of every version of every Restate service and of the Restate
    StatefulSet is a target, on the port compose scrapes, with the job and service labels the
    alerts and the runbook use; its instance is the pod. Nothing else is."""
    targets = scraped(rendered)
    found = {(t["labels"]["job"], t["labels"].get("service"), t["port"]) for t in targets}
    assert found == compose_targets()

    instances = [(t["labels"]["job"], t["labels"]["instance"]) for t in targets]
    assert len(instances) == len(set(instances)), "two targets with one instance"
    for target in targets:
        labels = target["labels"]
        assert labels["instance"] == labels["pod"] == target["pod"]["name"], labels
        assert set(labels) <= {"job", "service", "version", "pod", "instance"}, labels
        if labels["job"] == "restate":
            assert "service" not in labels, labels  # as in compose: Restate has its own

    # One target per pod: each replica (2 of each in production, 3 Restate nodes), no Job.
    for workload in (d for d in rendered if d["kind"] in WORKLOADS):
        component = workload["spec"]["template"]["metadata"]["labels"].get(
            "app.kubernetes.io/component"
        )
        mine = [t for t in targets if t["pod"]["name"].startswith(workload["metadata"]["name"])]
        if component in ("gateway", "restate-service", "restate-server"):
            assert len(mine) == workload["spec"].get("replicas", 1), workload["metadata"]["name"]
        else:
            assert not mine, f"{workload['metadata']['name']} is scraped"


def test_finished_pods_are_not_scraped(rendered: list[dict[str, Any]]) -> None:
    """An evicted pod keeps its address, which another pod may have by now."""
    assert scraped(rendered, phase="Failed") == []
    assert scraped(rendered, phase="Succeeded") == []


# ---------------------------------------------------------------- network policies


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values", [])
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not ok:
            return False
    return True


def port_allowed(rule: dict[str, Any], number: int, name: str) -> bool:
    if not rule.get("ports"):
        return True
    for port in rule["ports"]:
        if port.get("protocol", "TCP") != "TCP":
            continue
        wanted = port.get("port")
        if wanted is None or wanted == name:
            return True
        if isinstance(wanted, int) and wanted <= number <= port.get("endPort", wanted):
            return True
    return False


def peer_is(peers: list[dict[str, Any]] | None, labels: dict[str, str]) -> bool:
    """Whether a rule's from/to admits a pod of this namespace with these labels (peers
    with a namespaceSelector or an ipBlock are not counted on)."""
    if not peers:
        return True
    return any(
        "podSelector" in peer
        and "namespaceSelector" not in peer
        and selects(peer["podSelector"], labels)
        for peer in peers
    )


def allowed(
    policies: list[dict[str, Any]],
    source: dict[str, str],
    destination: dict[str, str],
    number: int,
    name: str,
) -> tuple[bool, bool]:
    """(egress allowed from source, ingress allowed to destination) on that TCP port."""

    def rules(labels: dict[str, str], kind: str, key: str) -> list[dict[str, Any]]:
        return [
            rule
            for policy in policies
            if kind in policy["spec"].get("policyTypes", ["Ingress"])
            and selects(policy["spec"]["podSelector"], labels)
            for rule in policy["spec"].get(key, [])
        ]

    egress = any(
        peer_is(rule.get("to"), destination) and port_allowed(rule, number, name)
        for rule in rules(source, "Egress", "egress")
    )
    ingress = any(
        peer_is(rule.get("from"), source) and port_allowed(rule, number, name)
        for rule in rules(destination, "Ingress", "ingress")
    )
    return egress, ingress


def test_network_policies_let_prometheus_reach_every_target(
    rendered: list[dict[str, Any]],
) -> None:
    policies = [d for d in rendered if d["kind"] == "NetworkPolicy"]
    assert any(not p["spec"]["podSelector"] for p in policies), "no default deny"
    prometheus = one(rendered, "Deployment", "prometheus")["spec"]["template"]["metadata"]["labels"]
    for target in scraped(rendered):
        pod = target["pod"]
        name = next(
            port.get("name", "")
            for container in pod["containers"]
            for port in container.get("ports", [])
            if port["containerPort"] == target["port"]
        )
        egress, ingress = allowed(policies, prometheus, pod["labels"], target["port"], name)
        assert egress, f"Prometheus may not send to {pod['name']}:{target['port']}"
        assert ingress, f"{pod['name']} does not admit Prometheus on {target['port']}"

    # And the API server, for discovery: an address outside the pods, on 443 or 6443.
    api = [
        rule
        for policy in policies
        if "Egress" in policy["spec"].get("policyTypes", [])
        and selects(policy["spec"]["podSelector"], prometheus)
        for rule in policy["spec"].get("egress", [])
        if any("ipBlock" in peer for peer in rule.get("to", []))
    ]
    assert any(port_allowed(r, 443, "") and port_allowed(r, 6443, "") for r in api), api
