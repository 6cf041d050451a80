"""Ship a new version of one Restate service beside the old one, then remove the old one once
nothing runs on it.

Restate keeps every invocation on the deployment it started on and sends new invocations to
the newest deployment of their service. So a new version is a new deployment at a new URL,
registered without `force` (force would replace the deployment at that URL in place, under
the invocations pinned to it), and the old deployment may go only when the admin API's
`sys_invocation` table shows no unfinished invocation pinned to it.

    python -m shop.dev.deployments list
    python -m shop.dev.deployments start fulfilment v2 [--port 9181]   # beside ./task dev
    python -m shop.dev.deployments drain <dp_... | URL> [--timeout SECONDS]

`start` runs the service in the foreground with the dev stack's settings, at its own port,
registering itself with `force` false (`./task dev` registers with force, since there the
code at a URL changes in place). `drain` works against any Restate admin API
(`--admin`, or RESTATE_ADMIN_URL): the dev stack, compose's published :9070, or a
`kubectl port-forward`.
"""

import argparse
import os
import re
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from shop.dev.stack import REPO, SERVICES, Ports, Stack

DEPLOYMENT_ID = re.compile(r"dp_[0-9A-Za-z]+")
# sys_invocation.status of a finished invocation (Restate 1.7.12); with any other status, an
# invocation with a pinned_deployment_id still needs that deployment.
FINISHED = "completed"


class AdminError(Exception):
    """The admin API cannot be reached, or refused what was asked."""


class Admin:
    """Restate's admin API. Several URLs (a cluster's nodes) are tried in turn."""

    def __init__(self, urls: str | list[str], timeout: float = 10) -> None:
        if isinstance(urls, str):
            urls = [u.strip() for u in urls.split(",") if u.strip()]
        self.urls = [u.rstrip("/") for u in urls]
        self.timeout = timeout

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        problems = []
        for url in self.urls:
            try:
                return httpx.request(method, f"{url}{path}", timeout=self.timeout, **kwargs)
            except httpx.HTTPError as e:
                problems.append(f"{url}: {e!r}")
        raise AdminError(f"Restate admin API not reachable ({'; '.join(problems)})")

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, headers={"accept": "application/json"}, **kwargs)
        if response.is_error:
            raise AdminError(f"{method} {path}: HTTP {response.status_code}: {response.text}")
        return response.json()

    def optional_json(self, path: str) -> Any | None:
        """GET, None for a 404."""
        response = self.request("GET", path, headers={"accept": "application/json"})
        if response.status_code == 404:
            return None
        if response.is_error:
            raise AdminError(f"GET {path}: HTTP {response.status_code}: {response.text}")
        return response.json()

    def query(self, sql: str) -> list[dict[str, Any]]:
        return self.json("POST", "/query", json={"query": sql})["rows"]

    def deployments(self) -> list[dict[str, Any]]:
        return self.json("GET", "/deployments")["deployments"]

    def newest_deployment(self, service: str) -> str | None:
        """The deployment new invocations of `service` go to (None: not registered)."""
        found = self.optional_json(f"/services/{service}")
        return found and found["deployment_id"]

    def register(self, uri: str, force: bool = False) -> dict[str, Any]:
        """POST /deployments. `force` is always sent: Restate 1.7 defaults it to true."""
        return self.json("POST", "/deployments", json={"uri": uri, "force": force})

    def pinned(self, deployment_id: str) -> list[dict[str, Any]]:
        """Unfinished invocations pinned to the deployment, counted by status and handler."""
        if not DEPLOYMENT_ID.fullmatch(deployment_id):
            raise ValueError(f"not a deployment id: {deployment_id!r}")
        return self.query(
            "SELECT status, target_service_name AS service, target_handler_name AS handler, "
            "count(*) AS n FROM sys_invocation "
            f"WHERE pinned_deployment_id = '{deployment_id}' AND status != '{FINISHED}' "
            "GROUP BY status, target_service_name, target_handler_name "
            "ORDER BY status, service, handler"
        )

    def delete(self, deployment_id: str) -> None:
        """Restate 1.7 implements only forced deletion (without it: 501), so the caller
        must have seen that nothing is pinned to it."""
        path = f"/deployments/{deployment_id}"
        response = self.request("DELETE", path, params={"force": "true"})
        if response.is_error:
            raise AdminError(f"DELETE {path}: HTTP {response.status_code}: {response.text}")


def same_uri(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


def find(admin: Admin, ref: str) -> dict[str, Any]:
    """A registered deployment by its id (dp_...) or its URL."""
    for deployment in admin.deployments():
        if deployment["id"] == ref or same_uri(deployment["uri"], ref):
            return deployment
    raise AdminError(f"no deployment {ref} is registered (see `./task deployments`)")


def services_of(deployment: dict[str, Any]) -> list[str]:
    return sorted(s["name"] for s in deployment["services"])


def newest_for(admin: Admin, deployment: dict[str, Any]) -> list[str]:
    """The services for which this deployment is still where new invocations go."""
    return [
        name
        for name in services_of(deployment)
        if admin.newest_deployment(name) == deployment["id"]
    ]


def describe(rows: list[dict[str, Any]]) -> str:
    return ", ".join(f"{r['n']} {r['status']} {r['service']}.{r['handler']}" for r in rows)


def drain(
    admin: Admin,
    ref: str,
    timeout: float | None = None,
    poll_seconds: float = 1.0,
    out: Callable[[str], None] = print,
) -> str:
    """Wait until no unfinished invocation is pinned to the deployment, then delete it.
    Refuses a deployment that still takes new invocations of a service (a newer version
    must be registered first). Returns the deployment's id."""
    deployment = find(admin, ref)
    dp, uri = deployment["id"], deployment["uri"]
    if newest := newest_for(admin, deployment):
        raise AdminError(
            f"{dp} ({uri}) is the newest deployment of {', '.join(newest)}: new invocations "
            "still go to it. Register the new version first, then drain this one."
        )
    services = ", ".join(services_of(deployment))
    out(f"draining {dp} ({uri}; {services}): new invocations go to newer deployments")
    deadline = None if timeout is None else time.monotonic() + timeout
    last = None
    while rows := admin.pinned(dp):
        summary = describe(rows)
        if summary != last:
            total = sum(int(r["n"]) for r in rows)
            out(f"waiting for {total} invocation(s) pinned to {dp} to finish: {summary}")
            if any(r["status"] == "paused" for r in rows):
                out(
                    "  paused invocations wait for an operator: resume or kill them "
                    "(Restate UI, Invocations), or this waits forever"
                )
            last = summary
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"{dp} still has invocations pinned after {timeout}s: {summary}")
        time.sleep(poll_seconds)
    # Nothing pinned, and nothing new can pin to it unless it became newest again meanwhile.
    if newest := newest_for(admin, find(admin, dp)):
        raise AdminError(f"{dp} became the newest deployment of {', '.join(newest)} again")
    admin.delete(dp)
    out(f"no invocation pinned to {dp} any more: removed it from Restate")
    out(f"the process at {uri} serves nothing now; stop it")
    return dp


def list_deployments(admin: Admin, out: Callable[[str], None] = print) -> None:
    newest: dict[str, str | None] = {}
    for deployment in sorted(admin.deployments(), key=lambda d: d["created_at"]):
        for name in services_of(deployment):
            newest.setdefault(name, admin.newest_deployment(name))
        mark = [n for n in services_of(deployment) if newest[n] == deployment["id"]]
        pinned = admin.pinned(deployment["id"])
        out(
            f"{deployment['id']}  {deployment['uri']}  {', '.join(services_of(deployment))}"
            f"  created {deployment['created_at'][:19]}"
        )
        out(f"    newest for: {', '.join(mark) or '-'}; in flight: {describe(pinned) or 'none'}")


def version_env(stack: Stack, service: str, version: str, port: int) -> dict[str, str]:
    """The environment of a new version of `service` beside `stack`: the stack's settings,
    its own port (so its own URL), registered without force."""
    env = {
        **os.environ,
        **stack.shared_env(),
        "PORT": str(port),
        "RESTATE_REGISTER": "true",
        "RESTATE_REGISTER_FORCE": "false",
    }
    env.pop("ADVERTISED_URL", None)  # http://127.0.0.1:<port>
    if service == "fulfilment":
        env["FULFILMENT_VERSION"] = version
    return env


def port_taken(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def start(service: str, version: str, port: int, state: Path) -> None:
    """Replace this process with the new version of `service`, in the foreground."""
    stack = Stack(state=state)
    if not stack.identity_key_file.exists():
        sys.exit(f"no dev stack in {state}: start `./task dev` first")
    admin = Admin(stack.shared_env()["RESTATE_ADMIN_URL"])
    url = f"http://127.0.0.1:{port}"
    try:
        known = [d for d in admin.deployments() if same_uri(d["uri"], url)]
    except AdminError as e:
        sys.exit(f"{e}: is `./task dev` running?")
    if known:
        sys.exit(
            f"{url} is already registered as {known[0]['id']}: Restate would keep the code it "
            "found there. Pick another --port, or drain that deployment first."
        )
    if port_taken(port):
        sys.exit(f"port {port} is in use: pick another --port")
    env = version_env(stack, service, version, port)
    print(
        f"starting {service} {version} at {url}, registering itself without force: new "
        f"invocations will go to it, running ones stay where they are.\n"
        f"  see them: ./task deployments · remove the old one: ./task drain -- <dp_... or URL>\n"
        f"  Ctrl-C stops this version (drain it first if it is the newest and has work).\n"
        f"  ./task dev's own {service} registers itself with force whenever it restarts,\n"
        f"  and is then the newest again.",
        flush=True,
    )
    os.execve(sys.executable, [sys.executable, "-m", f"shop.{service}"], env)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    admin_option = argparse.ArgumentParser(add_help=False)
    admin_option.add_argument(
        "--admin",
        default=os.environ.get("RESTATE_ADMIN_URL", "http://127.0.0.1:9070"),
        help="Restate's admin API, several comma-separated for a cluster "
        "(default: RESTATE_ADMIN_URL, else the dev stack's)",
    )
    commands.add_parser(
        "list", parents=[admin_option], help="deployments: newest for what, what is pinned"
    )
    begin = commands.add_parser("start", help="run a new version of a service beside ./task dev")
    begin.add_argument("service", choices=SERVICES)
    begin.add_argument("version", help="a name for it, e.g. v2 (fulfilment shows it on orders)")
    begin.add_argument("--port", type=int, help="its port (default: the service's dev port + 100)")
    begin.add_argument("--state", type=Path, default=REPO / ".stack", help="the dev stack's state")
    remove = commands.add_parser(
        "drain", parents=[admin_option], help="wait until nothing is pinned to it, then remove it"
    )
    remove.add_argument("deployment", help="its id (dp_...) or its URL")
    remove.add_argument("--timeout", type=float, help="give up after this many seconds")
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            list_deployments(Admin(args.admin))
        elif args.command == "start":
            port = args.port or getattr(Ports(), args.service) + 100
            start(args.service, args.version, port, args.state.resolve())
        else:
            drain(Admin(args.admin), args.deployment, timeout=args.timeout)
    except (AdminError, TimeoutError) as e:
        sys.exit(str(e))
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
