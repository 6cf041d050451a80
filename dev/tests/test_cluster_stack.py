import tomllib
from dataclasses import fields

import pytest

from shop.dev.stack import Ports, Stack

KEY_FILE = "RESTATE_WORKER__INVOKER__REQUEST_IDENTITY_PRIVATE_KEY_PEM_FILE"


def test_free_ports_include_every_cluster_node_and_never_repeat() -> None:
    ports = Ports.free()
    values = [getattr(ports, f.name) for f in fields(ports)]
    assert len(set(values)) == len(values)
    assert len({ports.restate_node(n) for n in (1, 2, 3)}) == 3


def test_a_three_node_cluster_is_three_restate_programs_with_their_own_ports(tmp_path) -> None:
    stack = Stack(
        state=tmp_path,
        ports=Ports.free(),
        cluster=3,
        restate_env={"RESTATE_DEFAULT_NUM_PARTITIONS": "4"},
        service_env={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"},
    )
    stack.prepare()
    programs = stack.programs()
    assert "restate" not in programs
    nodes = [programs[f"restate-{n}"] for n in (1, 2, 3)]
    binds = set()
    for n, (command, env) in enumerate(nodes, start=1):
        assert command[command.index("--node-name") + 1] == f"restate-{n}"
        assert command[command.index("--base-dir") + 1] == str(tmp_path / f"restate-{n}")
        assert command[command.index("--config-file") + 1] == str(stack.cluster_config_file)
        assert env["RESTATE_ADVERTISED_ADDRESS"] == stack.fabric_urls[n - 1]
        assert env["RESTATE_AUTO_PROVISION"] == ("true" if n == 1 else "false")
        assert env[KEY_FILE] == str(stack.identity_key_file)  # every node signs requests
        assert env["RESTATE_TRACING_ENDPOINT"] == "http://collector:4317"
        assert env["RESTATE_DEFAULT_NUM_PARTITIONS"] == "4"
        binds |= {env[k] for k in env if k.endswith("BIND_ADDRESS")}
    assert len(binds) == 9
    config = tomllib.loads(stack.cluster_config_file.read_text())
    assert config["cluster-name"] == "shop" and config["default-replication"] == 2
    assert config["bifrost"] == {"default-provider": "replicated"}
    assert config["metadata-client"] == {"type": "replicated", "addresses": stack.fabric_urls}
    env = stack.shared_env()
    assert env["RESTATE_INGRESS_URL"].split(",") == stack.ingress_urls
    assert env["RESTATE_ADMIN_URL"].split(",") == stack.admin_urls
    # 3 nodes, valkey, postgres, smtp, stripe, 5 services, the gateway and Prometheus; the
    # migrator runs once
    assert stack.supervisor_conf().count("autorestart=true") == 14


def test_one_node_is_the_program_restate_as_before(tmp_path) -> None:
    stack = Stack(state=tmp_path, ports=Ports.free())
    command, env = stack.programs()["restate"]
    assert command[command.index("--node-name") + 1] == "shop"
    assert command[command.index("--base-dir") + 1] == str(tmp_path / "restate")
    assert "--config-file" not in command and "RESTATE_AUTO_PROVISION" not in env
    assert stack.shared_env()["RESTATE_INGRESS_URL"] == stack.ingress_url


def test_only_one_or_three_nodes(tmp_path) -> None:
    with pytest.raises(ValueError, match="1 or 3"):
        Stack(state=tmp_path, cluster=2)
