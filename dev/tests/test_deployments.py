"""drain: deletes a deployment only after Restate shows nothing pinned to it (the e2e test
tests/e2e/test_upgrade.py runs it against a real server)."""

from pathlib import Path
from typing import Any

import pytest

from shop.dev.deployments import Admin, AdminError, drain, version_env
from shop.dev.stack import Ports, Stack

OLD: dict[str, Any] = {
    "id": "dp_old1",
    "uri": "http://127.0.0.1:9081/",
    "services": [{"name": "OrderFulfilment"}],
}
NEW: dict[str, Any] = {
    "id": "dp_new2",
    "uri": "http://127.0.0.1:9181/",
    "services": [{"name": "OrderFulfilment"}],
}


class FakeAdmin(Admin):
    """The admin API's answers, scripted: `pinned` answers are consumed one per poll."""

    def __init__(self, newest: str, pinned: list[list[dict[str, Any]]]) -> None:
        super().__init__("http://admin.invalid")
        self.newest, self.answers = newest, pinned
        self.calls: list[str] = []

    def deployments(self) -> list[dict[str, Any]]:
        return [OLD, NEW] if "delete" not in self.calls else [NEW]

    def newest_deployment(self, service: str) -> str | None:
        return self.newest

    def pinned(self, deployment_id: str) -> list[dict[str, Any]]:
        self.calls.append("pinned")
        return self.answers.pop(0)

    def delete(self, deployment_id: str) -> None:
        assert deployment_id == OLD["id"]
        self.calls.append("delete")


def rows(n: int, status: str = "suspended") -> list[dict[str, Any]]:
    return [{"status": status, "service": "OrderFulfilment", "handler": "run", "n": n}]


def test_deletes_only_once_nothing_is_pinned_and_says_what_it_waits_for() -> None:
    admin = FakeAdmin(newest=NEW["id"], pinned=[rows(2), rows(2), rows(1), []])
    printed: list[str] = []
    assert drain(admin, "http://127.0.0.1:9081", poll_seconds=0, out=printed.append) == OLD["id"]
    assert admin.calls == ["pinned"] * 4 + ["delete"]
    waits = [line for line in printed if line.startswith("waiting for")]
    assert waits == [
        "waiting for 2 invocation(s) pinned to dp_old1 to finish: 2 suspended OrderFulfilment.run",
        "waiting for 1 invocation(s) pinned to dp_old1 to finish: 1 suspended OrderFulfilment.run",
    ]


def test_refuses_the_deployment_new_invocations_still_go_to() -> None:
    admin = FakeAdmin(newest=OLD["id"], pinned=[[]])
    with pytest.raises(AdminError, match="newest deployment of OrderFulfilment"):
        drain(admin, OLD["id"], poll_seconds=0, out=lambda _: None)
    assert "delete" not in admin.calls


def test_gives_up_after_its_timeout_without_deleting() -> None:
    admin = FakeAdmin(newest=NEW["id"], pinned=[rows(1, "paused")] * 3)
    printed: list[str] = []
    with pytest.raises(TimeoutError):
        drain(admin, OLD["id"], timeout=0, poll_seconds=0, out=printed.append)
    assert "delete" not in admin.calls
    assert any("paused invocations wait for an operator" in line for line in printed)


def test_unknown_deployment_and_bad_ids_are_refused() -> None:
    admin = FakeAdmin(newest=NEW["id"], pinned=[])
    with pytest.raises(AdminError, match="no deployment"):
        drain(admin, "http://127.0.0.1:1/", out=lambda _: None)
    with pytest.raises(ValueError):
        Admin.pinned(admin, "dp_x' OR '1'='1")


def test_a_new_version_registers_without_force_at_its_own_port(tmp_path: Path) -> None:
    env = version_env(Stack(state=tmp_path, ports=Ports()), "fulfilment", "v2", 9181)
    assert env["RESTATE_REGISTER_FORCE"] == "false"
    assert env["PORT"] == "9181" and "ADVERTISED_URL" not in env
    assert env["FULFILMENT_VERSION"] == "v2"
