"""A real Restate server and a few services, without the rest of the stack: for tests of one
service (or one workflow against stubs) that need the engine but not Valkey, PostgreSQL,
SMTP, the Stripe emulator or the gateway.

The server is the pinned binary, started with the same command and environment as the
stack's (`Stack.restate_program`), on free ports in a folder of the test's; the services are
the shop's own processes (`python -m shop.<name>`, serving and registering themselves as in
`./task dev`, with the stack's environment), or services served in this process on a thread
of their own (`Harness.serve`, for stubs and test drivers), registered through the admin API.

    with restate_harness(tmp_path, "replay") as harness:
        harness.start_service("inventory", registers=["Inventory"])
        harness.ready()  # the server up, every service started registered
        harness.serve([relay])
        httpx.post(f"{harness.ingress_url}/HarnessRelay/call", json={...})

`Relay` calls any handler through Restate, private ones too (the ingress refuses those), and
answers a terminal error as a value: tests drive a service's private handlers through it as
the workflow would.
"""

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import restate
from hypercorn.asyncio import serve as hypercorn_serve
from pydantic import BaseModel
from restate import Context, TerminalError

from shop.dev.eventually import eventually
from shop.dev.stack import Ports, Stack, free_port
from shop.shared.serve import server_config

# Restate's two modes, as the e2e tests run them: normal, and one that suspends the handler
# after every step and replays its journal to go on (catches non-determinism).
MODES: dict[str, dict[str, str]] = {
    "normal": {},
    "replay": {"RESTATE_WORKER__INVOKER__INACTIVITY_TIMEOUT": "0s"},
}
STOP_SECONDS = 10


class Harness:
    """One Restate server (a node like the stack's) and the services registered with it."""

    def __init__(
        self, state: Path, restate_env: dict[str, str], service_env: dict[str, str]
    ) -> None:
        self.state = state
        self.stack = Stack(
            state=state, ports=Ports.free(), restate_env=restate_env, service_env=service_env
        )
        self.logs = state / "logs"
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.expected: dict[str, list[str]] = {}  # process -> the services it registers
        self.served: list[tuple[asyncio.AbstractEventLoop, asyncio.Event, threading.Thread]] = []

    @property
    def ingress_url(self) -> str:
        return self.stack.ingress_url

    @property
    def admin_url(self) -> str:
        return self.stack.admin_url

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.logs / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def _spawn(self, name: str, command: list[str], env: dict[str, str]) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        with (self.logs / f"{name}.log").open("wb") as log:
            self.processes[name] = subprocess.Popen(
                command,
                cwd=self.state,
                env={**os.environ, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def _alive(self, name: str) -> None:
        code = self.processes[name].poll()
        if code is not None:
            raise RuntimeError(f"{name} exited with {code}:\n{self.log_tail(name)}")

    def start_restate(self) -> None:
        """The server, as the stack runs it (`ready` waits for it)."""
        self.stack.identity_public_key()  # its request-signing key, made on first start
        (self.state / "restate").mkdir(parents=True, exist_ok=True)
        command, env = self.stack.restate_program(1)
        self._spawn("restate", command, env)

    def wait_restate(self, timeout: float = 60) -> None:
        """Until the server's admin API and ingress answer."""

        def up() -> bool:
            self._alive("restate")
            admin = httpx.get(f"{self.admin_url}/health", timeout=2)
            ingress = httpx.get(f"{self.ingress_url}/restate/health", timeout=2)
            return admin.status_code == 200 and ingress.status_code == 200

        eventually(up, timeout, every=0.05, what="Restate up", retry_on=(httpx.HTTPError,))

    def service_env(self, port: int) -> dict[str, str]:
        """What a shop service process gets in the stack (Restate's URLs, its signing key, dev
        mode...) at this port; services the harness does not run (Valkey, SMTP, Stripe) are
        at free ports where nothing listens."""
        # Stopped, a service drains for a second at most (Restate retries what it cut off).
        return {**self.stack.shared_env(), "PORT": str(port), "SHUTDOWN_DRAIN_SECONDS": "1"}

    def start_service(
        self,
        name: str,
        registers: Iterable[str],
        command: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> int:
        """A service process (`python -m shop.<name>` unless `command` says otherwise) on a
        free port, with the stack's environment (and `env`), started at once (several start
        side by side, with the server: `ready` waits for them all). It registers itself, as
        in the stack: `registers` are the Restate services it brings. Returns its port."""
        port = free_port()
        command = command or [sys.executable, "-m", f"shop.{name}"]
        self._spawn(name, command, {**self.service_env(port), **(env or {})})
        self.expected[name] = list(registers)
        return port

    def ready(self, timeout: float = 60) -> None:
        """Until the server answers and knows every service of the processes started."""
        self.wait_restate(timeout)

        def known() -> bool:
            for process, services in self.expected.items():
                self._alive(process)
                for service in services:
                    found = httpx.get(f"{self.admin_url}/services/{service}", timeout=2)
                    if found.status_code != 200:
                        return False
            return True

        eventually(known, timeout, every=0.05, what=f"{', '.join(self.expected)} registered")

    def register(self, uri: str) -> list[str]:
        """POST /deployments (forced, as the stack's services do); the services it found."""
        response = httpx.post(
            f"{self.admin_url}/deployments", json={"uri": uri, "force": True}, timeout=30
        )
        response.raise_for_status()
        return [s["name"] for s in response.json()["services"]]

    def serve(self, services: list[Any]) -> str:
        """Services served in this process (their own event loop, on a thread) on a free port
        and registered; accepts only requests this Restate server signed. Returns their URL."""
        port = free_port()
        app = restate.app(services=services, identity_keys=[self.stack.identity_public_key()])
        config = server_config(f"127.0.0.1:{port}")
        loop, ready = asyncio.new_event_loop(), threading.Event()
        stop = asyncio.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            ready.set()
            loop.run_until_complete(hypercorn_serve(app, config, shutdown_trigger=stop.wait))

        thread = threading.Thread(target=run, name=f"restate-services-{port}", daemon=True)
        thread.start()
        ready.wait()
        self.served.append((loop, stop, thread))
        url = f"http://127.0.0.1:{port}"
        self.wait_restate()
        eventually(
            lambda: httpx.get(f"{url}/health", timeout=2).status_code == 200,
            10,
            every=0.02,
            what="in-process services listening",
            retry_on=(httpx.HTTPError,),
        )
        self.register(url)
        return url

    def stop(self) -> None:
        """Every service, then the server: SIGTERM, then SIGKILL for one that hangs."""
        for loop, stop, thread in self.served:
            loop.call_soon_threadsafe(stop.set)
            thread.join(STOP_SECONDS)
            if not thread.is_alive():
                loop.close()
        services = [p for name, p in self.processes.items() if name != "restate"]
        restate_server = self.processes.get("restate")
        for group in (services, [restate_server] if restate_server else []):
            for process in group:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process in group:
                try:
                    process.wait(STOP_SECONDS)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


@contextmanager
def restate_harness(
    state: Path, mode: str = "normal", service_env: dict[str, str] | None = None
) -> Iterator[Harness]:
    """A Restate server in `mode` (a key of MODES) with its data in `state`, started (not
    waited for: start the services beside it, then `ready`); it and every service started
    through the harness stopped on exit."""
    harness = Harness(state, MODES[mode], service_env or {})
    try:
        harness.start_restate()
        yield harness
    finally:
        harness.stop()


class RelayCall(BaseModel):
    service: str
    handler: str
    key: str | None = None
    body: Any = None  # the handler's input, as JSON


class RelayReply(BaseModel):
    """The handler's answer (`ok`), or its terminal error, as a value."""

    ok: bool
    body: Any = None
    error: str | None = None
    status_code: int | None = None


relay = restate.Service("HarnessRelay")


@relay.handler()
async def call(ctx: Context, request: RelayCall) -> RelayReply:
    """Calls `service/key/handler` through Restate, as one service calls another."""
    arg = json.dumps(request.body).encode()
    try:
        raw = await ctx.generic_call(request.service, request.handler, arg, key=request.key)
    except TerminalError as e:
        return RelayReply(ok=False, error=e.message, status_code=e.status_code)
    return RelayReply(ok=True, body=json.loads(raw) if raw else None)
