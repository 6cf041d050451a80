"""The compose smoke test (`./task compose-smoke`): deploy/compose.yaml, run for real with Podman.

1. builds every image (deploy/podman/images.py: local base, stand-ins for Restate, Valkey and
   Prometheus, our own images, PostgreSQL);
2. `podman-compose up -d` of deploy/compose.yaml with the local override
   (compose.local-smoke.yaml: no Jaeger or Mailpit here, the dev SMTP sink instead) and the
   `local` profile, under a project name of its own, on free loopback ports, with a fresh
   request-identity key pair and every secret (admin token, Valkey's password, Stripe's key
   and webhook secret, the database passwords) a file in a temporary folder;
3. waits until every container passes its compose healthcheck (Podman 4.3 runs healthchecks
   only through systemd timers, which these machines lack, so this script runs them) and the
   one-shot `book-migrate` has exited 0; checks that Restate has every service registered,
   the order book's (Orders, OrderBook) included, and that no secret is in any container's
   environment or command line (`podman inspect`, and /proc/<pid>/environ and cmdline of each
   container's process);
4. places an order through the published gateway and asserts it completes with exactly one
   captured PaymentIntent in the Stripe emulator (whose webhooks about it the gateway
   verified: both read the same secret file) and one mail in the SMTP sink, and that the
   order book has it with the same final status (the gateway's admin API, with the token);
   then refunds it in full and reconciles Stripe with the book over the run: nothing to report;
   then asks the published Prometheus until every target it scrapes is up (the six services,
   Restate, itself) and it has counted the completed order, and checks that it loaded the
   alert rules of deploy/observability/alerts.yml, every one evaluating without error;
5. SIGKILLs the fulfilment container's process while a second order waits in its cancel
   window, and asserts compose's restart policy brings it back and the order completes, with
   one charge and one mail;
6. checks who reaches what: Restate's ingress only from the shop's network, PostgreSQL only
   from the orders service (its network `book`), and Prometheus nothing but what it scrapes
   (its network `metrics`);
7. stops the services (each must exit on SIGTERM well before the grace period), then
   `podman-compose down -v`, whatever happened.

It fails, never skips, when Podman cannot run containers here. Run as root (as CI does).
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import images  # deploy/podman/images.py, beside this file

from shop.dev import identity_keys
from shop.dev.eventually import eventually

SERVICES = ("fulfilment", "payments", "inventory", "email", "orders", "gateway")
# Run once by `up`, to exit 0 before what depends on them starts.
ONE_SHOT = ("book-migrate",)
# The Restate services every deployment registers, by name.
RESTATE_SERVICES = {"OrderFulfilment", "Payments", "Inventory", "Email", "Orders", "OrderBook"}
FINAL = {"completed", "failed", "cancelled"}
# What Prometheus scrapes (deploy/observability/prometheus.yml): each target by its `service`
# label (job `shop`), else by its job.
SCRAPED = {*SERVICES, "restate", "prometheus"}
ALERT_RULES = images.DEPLOY / "observability" / "alerts.yml"
STRIPE_KEY = f"sk_test_{uuid.uuid4().hex}"


def fresh_secrets() -> dict[str, str]:
    """compose.yaml's file secrets (but Restate's key), by name: each a fresh value."""
    return {
        "admin_token": uuid.uuid4().hex,
        "valkey_password": uuid.uuid4().hex,
        "stripe_api_key": STRIPE_KEY,
        "stripe_webhook_secret": f"whsec_{uuid.uuid4().hex}",
        "postgres_superuser_password": uuid.uuid4().hex,
        "migrator_database_password": uuid.uuid4().hex,
        "orders_database_password": uuid.uuid4().hex,
    }


class SmokeFailure(Exception):
    pass


# What a wait takes as "not yet": a container restarting, an order not final.
RETRY_ON = (httpx.HTTPError, SmokeFailure)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def stage(name: str) -> Iterator[None]:
    started = time.monotonic()
    print(f"compose smoke: {name} ...", flush=True)
    yield
    print(f"compose smoke: {name}: ok ({time.monotonic() - started:.0f}s)", flush=True)


def preflight() -> None:
    """Podman installed and able to run a container here, or a clear failure."""
    if not shutil.which("podman"):
        raise SmokeFailure("podman is not installed: `./task apt` installs it (apt, as root)")
    info = images.podman("info", check=False, capture=True)
    if info.returncode != 0:
        raise SmokeFailure(f"podman cannot run here: {info.stderr.strip()[-2000:]}")


def check_can_run_containers() -> None:
    run = images.podman(
        "run", "--rm", "--pull=never", images.BASE_IMAGE, "true", check=False, capture=True
    )
    if run.returncode != 0:
        raise SmokeFailure(
            "Podman cannot run containers on this machine, so the compose smoke test cannot "
            f"run (podman run exited {run.returncode}: {run.stderr.strip()[-2000:]}). It needs "
            "root, runc and the settings in deploy/podman/containers.conf (CONTAINERS_CONF)."
        )


@dataclass
class Project:
    """One podman-compose project of deploy/compose.yaml with the local override."""

    name: str
    env_file: Path
    log: Path
    gateway_port: int
    stripe_port: int
    prometheus_port: int

    def compose(self, *args: str, check: bool = True) -> None:
        command = [sys.executable, "-m", "podman_compose", "-p", self.name]
        command += ["--env-file", str(self.env_file), "--profile", "local"]
        for file in images.COMPOSE_FILES:
            command += ["-f", str(file)]
        with self.log.open("a") as log:
            log.write(f"\n$ podman-compose {' '.join(args)}\n")
            log.flush()
            result = subprocess.run(
                [*command, *args], env=images.podman_env(), stdout=log, stderr=log, check=False
            )
        if check and result.returncode != 0:
            raise SmokeFailure(f"podman-compose {args[0]} exited {result.returncode}")

    def containers(self) -> dict[str, dict[str, Any]]:
        """service name -> `podman inspect` of its container."""
        names = images.podman(
            "ps",
            "-a",
            "--filter",
            f"label=io.podman.compose.project={self.name}",
            "--format",
            "{{.Names}}",
            capture=True,
        ).stdout.split()
        if not names:
            return {}
        inspected = json.loads(images.podman("inspect", *names, capture=True).stdout)
        return {c["Config"]["Labels"]["com.docker.compose.service"]: c for c in inspected}

    def container(self, service: str) -> dict[str, Any]:
        return self.containers()[service]

    def wait_healthy(self, timeout: float) -> None:
        """Run every container's healthcheck until all pass (no systemd to schedule them)."""
        deadline = time.monotonic() + timeout
        pending: dict[str, str] = {}
        while time.monotonic() < deadline:
            pending = {}
            for service, c in self.containers().items():
                if service in ONE_SHOT:
                    state = c["State"]
                    if state["Status"] != "exited":
                        pending[service] = state["Status"]
                    elif state["ExitCode"] != 0:
                        raise SmokeFailure(f"{service} exited {state['ExitCode']}")
                    continue
                if c["RestartCount"] >= 3:
                    raise SmokeFailure(f"{service} keeps exiting ({c['RestartCount']} restarts)")
                if not c["State"]["Running"]:
                    pending[service] = c["State"]["Status"]
                    continue
                check = images.podman("healthcheck", "run", c["Name"], check=False, capture=True)
                if check.returncode != 0:
                    pending[service] = (check.stdout + check.stderr).strip() or "unhealthy"
            if not pending:
                return
            time.sleep(1)
        raise SmokeFailure(f"not healthy after {timeout:.0f}s: {pending}")

    def exec(self, service: str, *command: str) -> str:
        """The command's output in the service's container (its exit code is not checked)."""
        name = self.container(service)["Name"]
        return images.podman("exec", name, *command, check=False, capture=True).stdout

    def dump_logs(self, lines: int = 40) -> None:
        for service, c in sorted(self.containers().items()):
            logs = images.podman("logs", "--tail", str(lines), c["Name"], check=False, capture=True)
            print(f"\n----- {service} ({c['State']['Status']}, restarts {c['RestartCount']})")
            print((logs.stdout + logs.stderr).rstrip())
        print(f"\n----- podman-compose\n{self.log.read_text()[-4000:]}")


def write_env(folder: Path, gateway_port: int, stripe_port: int, prometheus_port: int) -> Path:
    key_file = folder / "restate-identity.pem"
    public_key = identity_keys.ensure(key_file)
    # Every secret a file (compose secrets), readable by the containers' users (compose
    # bind-mounts them as they are); the folder itself is the temporary one, 0700. The env
    # file names where each is (<NAME>_FILE), as deploy/.env does, and holds no secret.
    secret_files = {}
    for name, value in fresh_secrets().items():
        path = folder / name
        path.write_text(value + "\n")
        path.chmod(0o644)
        secret_files[f"{name.upper()}_FILE"] = str(path)
    env = {
        "STRIPE_API_BASE": "http://stripe-emulator:12111",
        "RESTATE_IDENTITY_KEYS": public_key,
        "RESTATE_IDENTITY_KEY_FILE": str(key_file),
        "GATEWAY_PORT": str(gateway_port),
        "STRIPE_EMULATOR_PORT": str(stripe_port),
        "PROMETHEUS_PORT": str(prometheus_port),
        "CANCEL_WINDOW_SECONDS": "5",
        **secret_files,
    }
    path = folder / "smoke.env"
    path.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    return path


def read_env(path: Path) -> dict[str, str]:
    lines = path.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


def read_secrets(env_file: Path) -> dict[str, str]:
    """The secret files the env file names (<NAME>_FILE), by name: their values."""
    return {
        name.removesuffix("_FILE").lower(): Path(path).read_text().strip()
        for name, path in read_env(env_file).items()
        if name.endswith("_FILE") and name != "RESTATE_IDENTITY_KEY_FILE"
    }


class Shop:
    """The published gateway and the emulator's Stripe API, from the host."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.gateway = httpx.Client(base_url=f"http://127.0.0.1:{project.gateway_port}", timeout=10)
        self.admin_token = read_secrets(project.env_file)["admin_token"]
        self.stripe = httpx.Client(
            base_url=f"http://127.0.0.1:{project.stripe_port}",
            headers={"Authorization": f"Bearer {STRIPE_KEY}"},
            timeout=10,
        )

    def place_order(self) -> str:
        response = self.gateway.post(
            "/api/orders",
            json={
                "customer_email": "smoke@example.com",
                "items": [{"product_id": "mug-classic", "quantity": 1}],
                "payment_method": "pm_card_visa",
            },
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
        if response.status_code != 202:
            raise SmokeFailure(f"POST /api/orders: {response.status_code} {response.text}")
        return response.json()["order_id"]

    def status(self, order_id: str) -> dict[str, Any]:
        response = self.gateway.get(f"/api/orders/{order_id}")
        response.raise_for_status()
        return response.json()

    def wait_final(self, order_id: str, timeout: float) -> dict[str, Any]:
        def final() -> dict[str, Any]:
            status = self.status(order_id)
            if status["status"] not in FINAL:
                raise SmokeFailure(f"{status['status']} at step {status['step']}")
            return status

        status = eventually(
            final, timeout, every=0.3, what=f"order {order_id} final", retry_on=RETRY_ON
        )
        if status["status"] != "completed":
            raise SmokeFailure(f"order {order_id} ended {status['status']}: {status}")
        return status

    def assert_charged_once(self, order_id: str) -> None:
        response = self.stripe.get("/v1/payment_intents", params={"metadata[order_id]": order_id})
        response.raise_for_status()
        intents = response.json()["data"]
        captured = [i for i in intents if i["status"] == "succeeded"]
        if len(intents) != 1 or len(captured) != 1:
            raise SmokeFailure(
                f"order {order_id}: expected one captured PaymentIntent, found "
                f"{[(i['id'], i['status']) for i in intents]}"
            )

    def assert_webhooks_accepted(self, order_id: str, timeout: float) -> None:
        """The emulator's events about the order's payment were each acknowledged by the
        gateway (a 2xx: the signature verified), so both read the same webhook secret file."""
        response = self.stripe.get("/v1/payment_intents", params={"metadata[order_id]": order_id})
        response.raise_for_status()
        intent_id = response.json()["data"][0]["id"]

        def acknowledged() -> int:
            events = self.stripe.get("/_emulator/events", params={"payment_intent": intent_id})
            events.raise_for_status()
            data = events.json()["data"]
            pending = [e["type"] for e in data if e["pending_webhooks"]]
            if not data or pending:
                raise SmokeFailure(f"{intent_id}: events the gateway did not take: {pending}")
            return len(data)

        count = eventually(
            acknowledged, timeout, every=0.5, what=f"{intent_id}'s webhooks", retry_on=RETRY_ON
        )
        print(f"compose smoke: the gateway verified and acknowledged {count} events of {intent_id}")

    def assert_in_book(self, order_id: str, status: str, timeout: float) -> dict[str, Any]:
        """The order book (PostgreSQL, through the orders service) has the order with its
        final status: the workflow records each status by a one-way send, so it may lag."""

        def booked() -> dict[str, Any]:
            response = self.gateway.get(
                f"/api/admin/orders/{order_id}",
                headers={"Authorization": f"Bearer {self.admin_token}"},
            )
            if response.status_code != 200:
                raise SmokeFailure(f"GET /api/admin/orders/{order_id}: {response.status_code}")
            record = response.json()
            if record["status"] != status:
                raise SmokeFailure(f"the book has {record['status']}, not {status}")
            return record

        record = eventually(
            booked, timeout, every=0.5, what=f"order {order_id} in the book", retry_on=RETRY_ON
        )
        history = [h["status"] for h in record["history"]]
        print(f"compose smoke: the book has order {order_id}: {status}, history {history}")
        return record

    def admin(self, method: str, path: str, **request: Any) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        response = self.gateway.request(method, path, headers=headers, **request)
        if not response.is_success:
            raise SmokeFailure(f"{method} {path}: {response.status_code} {response.text}")
        return response.json()

    def refund_and_reconcile(self, order_id: str, since: str, timeout: float) -> None:
        """Refunds the order in full (items back in stock), then reconciles Stripe with the
        book from `since`: the refund at Stripe, the book `refunded`, nothing to report."""
        path = f"/api/admin/orders/{order_id}/refunds"
        opened = self.admin("POST", path, json={"reason": "compose smoke", "restock": True})

        def settled() -> dict[str, Any]:
            refund = self.admin("GET", opened["status_url"])
            if refund["status"] == "pending":
                raise SmokeFailure("the refund is pending")
            return refund

        refund = eventually(settled, timeout, every=0.5, what="the refund", retry_on=RETRY_ON)
        if refund["status"] != "succeeded":
            raise SmokeFailure(f"refund of {order_id}: {refund}")
        self.assert_in_book(order_id, "refunded", timeout)
        until = datetime.now(UTC) + timedelta(seconds=1)
        window = {"since": since, "until": until.isoformat()}
        started = self.admin("POST", "/api/admin/reconciliations", json=window)

        def reported() -> dict[str, Any]:
            report = self.admin("GET", started["status_url"])
            if report["status"] == "running":
                raise SmokeFailure("the reconciliation is running")
            return report

        report = eventually(reported, timeout, every=0.5, what="the report", retry_on=RETRY_ON)
        if report["status"] != "completed" or report["discrepancies"]:
            raise SmokeFailure(f"reconciliation: {report}")
        print(f"compose smoke: refunded {order_id}; reconciliation clean: {report['status']}")

    def assert_mailed_once(self, order_id: str) -> None:
        files = self.project.exec(
            "smtp", "grep", "-rl", f"Message-ID: <{order_id}.confirmation@", "/tmp/mail/new"
        ).split()
        if len(files) != 1:
            raise SmokeFailure(f"order {order_id}: expected one confirmation mail, found {files}")


class Prometheus:
    """The published Prometheus's HTTP API, from the host."""

    def __init__(self, port: int) -> None:
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)

    def api(self, path: str, **params: str) -> Any:
        response = self.http.get(f"/api/v1/{path}", params=params)
        response.raise_for_status()
        body = response.json()
        if body.get("status") != "success":
            raise SmokeFailure(f"Prometheus's /api/v1/{path}: {body}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return self.api("query", query=expr)["result"]


def prometheus_sees_the_shop(project: Project, timeout: float) -> None:
    """Prometheus (published on loopback) scrapes every target (`up` 1: the six services,
    Restate, itself) and has counted the completed order; at 15 s between scrapes, that takes
    up to a scrape after the order."""
    prometheus = Prometheus(project.prometheus_port)

    def scraped() -> tuple[dict[str, str], float]:
        up = {
            r["metric"].get("service", r["metric"]["job"]): r["value"][1]
            for r in prometheus.query("up")
        }
        down = {
            target: up.get(target, "absent") for target in sorted(SCRAPED) if up.get(target) != "1"
        }
        if down or set(up) != SCRAPED:
            raise SmokeFailure(f"up: {up}; not up: {down}")
        query = 'sum(shop_orders_finished_total{status="completed"})'
        result = prometheus.query(query)
        completed = float(result[0]["value"][1]) if result else 0.0
        if completed < 1:
            raise SmokeFailure(f"{query}: {completed}")
        return up, completed

    up, completed = eventually(
        scraped,
        timeout,
        every=1,
        what="every target up in Prometheus, the order counted",
        retry_on=RETRY_ON,
    )
    print(
        f"compose smoke: Prometheus (127.0.0.1:{project.prometheus_port}): up 1 for all "
        f"{len(up)} targets {sorted(up)}; "
        f'shop_orders_finished_total{{status="completed"}} {completed:g}'
    )


def prometheus_loaded_the_rules(project: Project) -> None:
    """Prometheus loaded alerts.yml: the same groups with as many rules each, none failing
    to evaluate (health `err`: a query Prometheus cannot run on the shop's series)."""
    prometheus = Prometheus(project.prometheus_port)
    expected = {
        group["name"]: len(group["rules"])
        for group in yaml.safe_load(ALERT_RULES.read_text())["groups"]
    }
    groups = prometheus.api("rules")["groups"]
    loaded = {group["name"]: len(group["rules"]) for group in groups}
    if loaded != expected:
        raise SmokeFailure(f"rule groups loaded {loaded}, {ALERT_RULES.name} has {expected}")
    rules = [rule for group in groups for rule in group["rules"]]
    failing = {r["name"]: r.get("lastError") for r in rules if r["health"] == "err"}
    if failing:
        raise SmokeFailure(f"rules failing to evaluate: {failing}")
    health = sorted({r["health"] for r in rules})
    firing = sorted(r["name"] for r in rules if r.get("state") == "firing")
    print(
        f"compose smoke: Prometheus loaded {ALERT_RULES.name}: groups {loaded} (rules by "
        f"group), health {health}, firing {firing or 'none'}"
    )


def crash_fulfilment_in_cancel_window(shop: Shop, project: Project) -> None:
    order_id = shop.place_order()
    eventually(
        lambda: shop.status(order_id)["step"] == "reserved",
        timeout=30,
        what=f"order {order_id} in its cancel window",
        retry_on=RETRY_ON,
    )
    before = project.container("fulfilment")
    os.kill(before["State"]["Pid"], signal.SIGKILL)  # a crash, not a stop: the policy applies
    print(f"compose smoke: SIGKILLed fulfilment (pid {before['State']['Pid']}) mid-order")

    def restarted() -> bool:
        now = project.container("fulfilment")
        return now["RestartCount"] > before["RestartCount"] and now["State"]["Running"]

    eventually(restarted, timeout=30, what="fulfilment restarted by its restart policy")
    shop.wait_final(order_id, timeout=120)
    shop.assert_charged_once(order_id)
    shop.assert_mailed_once(order_id)


# Run in the gateway's container: a client without Valkey's password is refused.
VALKEY_WITHOUT_PASSWORD = """
import redis
try:
    redis.Redis(host='valkey', socket_timeout=3).ping()
    print('answered')
except redis.AuthenticationError as e:
    print('refused', e)
"""


# Run in a container with a service's name, its addresses and a port: whether any opens.
REACH = """
import socket, sys
port, hosts = int(sys.argv[1]), sys.argv[2:]
for host in hosts:
    try:
        socket.create_connection((host, port), 3).close()
        print('reached', host)
        break
    except OSError:
        pass
else:
    print('unreachable')
"""


def only_one_reaches(project: Project, target: str, port: int, one: str, others: list[str]) -> None:
    """`target`'s port is in reach of `one` (the control) and of none of `others`, by name or
    by any of its addresses."""
    networks = project.container(target)["NetworkSettings"]["Networks"]
    hosts = [target, *(n["IPAddress"] for n in networks.values() if n.get("IPAddress"))]
    reach = {
        service: project.exec(service, "python", "-c", REACH, str(port), *hosts).strip()
        for service in (one, *others)
    }
    if not reach[one].startswith("reached") or any(reach[s].startswith("reached") for s in others):
        raise SmokeFailure(f"who reaches {target}:{port} ({hosts}): {reach}")
    print(f"compose smoke: {target}:{port} ({hosts}) from each container: {reach}")


def only_the_shop_reaches_restate(project: Project) -> None:
    """The mail server and the Stripe emulator are not on Restate's network (`core`): its
    ingress, which starts orders, is out of their reach; the gateway's reach is the control."""
    only_one_reaches(project, "restate", 8080, "gateway", ["stripe-emulator", "smtp"])


def only_orders_reaches_postgres(project: Project) -> None:
    """PostgreSQL is on `book` alone, with the orders service and its migrator: the other
    services (on `core` with orders) do not reach it; the orders service's is the control."""
    only_one_reaches(project, "postgres", 5432, "orders", ["gateway", "fulfilment"])


def prometheus_reaches_its_targets_only(project: Project) -> None:
    """Prometheus is on `metrics` (with the services and Restate) and its own published
    network only: Valkey, PostgreSQL, the mail server and the emulator are out of its reach.
    Its targets' being up (above) is the control. Run with the stand-in image's python3 (its
    local base's; the upstream image has none)."""
    reach = {}
    for target, port in (
        ("valkey", 6379),
        ("postgres", 5432),
        ("smtp", 1025),
        ("stripe-emulator", 12111),
    ):
        networks = project.container(target)["NetworkSettings"]["Networks"]
        hosts = [target, *(n["IPAddress"] for n in networks.values() if n.get("IPAddress"))]
        out = project.exec("prometheus", "python3", "-c", REACH, str(port), *hosts).strip()
        reach[f"{target}:{port}"] = out
    if any(out != "unreachable" for out in reach.values()):
        raise SmokeFailure(f"what Prometheus reaches: {reach}")
    print(f"compose smoke: from Prometheus: {reach}")


def registered(project: Project) -> set[str]:
    """Restate knows every service (each registered itself), the order book's included: the
    names it has, asked inside its container (its admin API is not published)."""
    out = project.exec("restate", "curl", "-fsS", "http://127.0.0.1:9070/services")
    try:
        names = {s["name"] for s in json.loads(out)["services"]}
    except (ValueError, KeyError, TypeError) as e:
        raise SmokeFailure(f"Restate's GET /services: {out[-500:]!r}") from e
    missing = RESTATE_SERVICES - names
    if missing:
        raise SmokeFailure(f"not registered with Restate: {sorted(missing)}")
    return names


def no_secret_in_environments(project: Project) -> None:
    """Every secret reaches its containers as a file in /run/secrets only: none is in a
    container's configured environment or command (what `podman inspect` shows), nor in the
    environment or command line its process started with (/proc/<pid>/environ, cmdline), nor
    a variable of a secret's name set at all."""
    secrets = read_secrets(project.env_file)
    names = {name.upper() for name in secrets}
    found: list[str] = []
    for service, c in sorted(project.containers().items()):
        config = c["Config"]
        env = config.get("Env") or []
        shown = {
            "inspect Env": "\n".join(env),
            "inspect command": json.dumps(
                [config.get("Entrypoint"), config.get("Cmd"), c.get("Path"), c.get("Args")]
            ),
        }
        pid = c["State"].get("Pid") or 0
        if c["State"]["Running"] and pid > 0:
            for what in ("environ", "cmdline"):
                try:
                    raw = Path(f"/proc/{pid}/{what}").read_bytes()
                except OSError:  # the process exited since `podman inspect`
                    continue
                shown[f"/proc/{pid}/{what}"] = raw.decode(errors="replace")
        for where, text in shown.items():
            found += [f"{service}: {name} in {where}" for name, v in secrets.items() if v in text]
        variables = {v.split("=", 1)[0] for v in env}
        found += [f"{service}: {name} set" for name in sorted(variables & names)]
    if found:
        raise SmokeFailure(f"secrets outside their files: {found}")
    print(f"compose smoke: none of the secrets {sorted(secrets)} in any environment or command")


def stop_services(project: Project) -> None:
    """SIGTERM (their STOPSIGNAL) to the six services at once: each must exit by itself."""
    containers = project.containers()
    names = [containers[s]["Name"] for s in SERVICES]
    started = time.monotonic()
    images.podman("stop", "--time", "10", *names, capture=True)
    took = time.monotonic() - started
    codes = {s: project.container(s)["State"]["ExitCode"] for s in SERVICES}
    killed = [s for s, code in codes.items() if code == 128 + signal.SIGKILL]
    if killed or took > 9:
        raise SmokeFailure(f"services did not exit on SIGTERM in time ({took:.1f}s): {codes}")
    print(f"compose smoke: the six services exited on SIGTERM in {took:.1f}s: {codes}")


def main() -> int:
    started = time.monotonic()
    project = None
    try:
        preflight()
        with tempfile.TemporaryDirectory(prefix="shop-compose-smoke-") as tmp:
            folder = Path(tmp)
            gateway_port, stripe_port, prometheus_port = free_port(), free_port(), free_port()
            env_file = write_env(folder, gateway_port, stripe_port, prometheus_port)
            with stage("images"):
                images.ensure_base()
                check_can_run_containers()
                for tag, size in images.build_all(env_file).items():
                    print(f"  {size / 1e6:6.0f} MB  {tag}")
            project = Project(
                name=f"shop-smoke-{os.getpid()}",
                env_file=env_file,
                log=folder / "podman-compose.log",
                gateway_port=gateway_port,
                stripe_port=stripe_port,
                prometheus_port=prometheus_port,
            )
            try:
                with stage("podman-compose up, every healthcheck passing, book-migrate exited 0"):
                    project.compose("up", "-d")
                    project.wait_healthy(timeout=240)
                with stage("every service registered with Restate, the order book's included"):
                    names = eventually(
                        lambda: registered(project),
                        timeout=30,
                        what="every service registered",
                        retry_on=RETRY_ON,
                    )
                    print(f"compose smoke: registered with Restate: {sorted(names)}")
                with stage("no secret in any container's environment or command line"):
                    no_secret_in_environments(project)
                shop = Shop(project)
                with stage("the gateway subscribed to Valkey (with its password)"):
                    eventually(
                        lambda: shop.gateway.get("/readyz").json()["live_updates"] == "connected",
                        timeout=30,
                        what="live updates connected",
                        retry_on=RETRY_ON,
                    )
                    anonymous = project.exec("gateway", "python", "-c", VALKEY_WITHOUT_PASSWORD)
                    if "refused" not in anonymous:
                        raise SmokeFailure(f"Valkey without its password: {anonymous.strip()}")
                with stage("an order: completed, charged once, mailed once, in the book"):
                    since = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
                    order_id = shop.place_order()
                    final = shop.wait_final(order_id, timeout=60)
                    shop.assert_charged_once(order_id)
                    shop.assert_webhooks_accepted(order_id, timeout=30)
                    shop.assert_mailed_once(order_id)
                    shop.assert_in_book(order_id, final["status"], timeout=30)
                with stage("refunded in full, and Stripe reconciled with the book: clean"):
                    shop.refund_and_reconcile(order_id, since, timeout=60)
                with stage("Prometheus: every target up, the order counted, the rules loaded"):
                    prometheus_sees_the_shop(project, timeout=90)
                    prometheus_loaded_the_rules(project)
                with stage("fulfilment killed in the cancel window: restarted, order completes"):
                    crash_fulfilment_in_cancel_window(shop, project)
                with stage("the mail server and the Stripe emulator cannot reach Restate"):
                    only_the_shop_reaches_restate(project)
                with stage("only the orders service reaches PostgreSQL"):
                    only_orders_reaches_postgres(project)
                with stage("Prometheus reaches what it scrapes, nothing else"):
                    prometheus_reaches_its_targets_only(project)
                with stage("services stop promptly on SIGTERM"):
                    stop_services(project)
            except BaseException:
                project.dump_logs()
                raise
            finally:
                with stage("podman-compose down -v"):
                    project.compose("down", "-v", check=False)
    except (SmokeFailure, TimeoutError, images.ImageError, subprocess.CalledProcessError) as e:
        print(f"\ncompose smoke: FAILED after {time.monotonic() - started:.0f}s: {e}", flush=True)
        return 1
    print(f"\ncompose smoke: passed in {time.monotonic() - started:.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
