"""The order book's PostgreSQL server for the local stack: Debian's binaries, data in the
stack's state folder, its own port.

PostgreSQL refuses to run as root, so when the stack runs as root (a container, CI) the server
runs as the `postgres` user the Debian package makes (else `nobody`), which then needs to pass
through every folder above its data. Those may be private (pytest's temporary folders are
0700, and pytest makes them so again whenever another session starts), so each start of the
server (`python -m shop.dev.order_book ROOT PORT`, as root) lets others pass through them
again, then becomes that user and runs PostgreSQL in its place (same pid, for supervisord).
The cluster, its roles and the passwords (random, kept beside the data) are made on first
start by deploy/postgres/book-init, the same script the container image runs.
"""

import os
import pwd
import secrets
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[4]
INIT = REPO / "deploy" / "postgres" / "book-init"
ROLES = ("superuser", "migrator", "orders")


def pg_bin() -> Path:
    """The newest PostgreSQL server installed by Debian's packages (or POSTGRES_BIN_DIR)."""
    if configured := os.environ.get("POSTGRES_BIN_DIR"):
        return Path(configured)
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parts[-3])
    )
    if not found:
        sys.exit("PostgreSQL is not installed: run `./task apt` (Debian's postgresql package)")
    return found[-1].parent


def server_user() -> str | None:
    """Who runs the server: None (whoever runs the stack) unless that is root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    sys.exit("running as root, and no `postgres` or `nobody` user to run PostgreSQL as")


def reachable(path: Path) -> None:
    """Lets other users pass through (not list) every folder above `path`."""
    for folder in path.parents:
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            folder.chmod(mode | stat.S_IXOTH)


@dataclass(frozen=True)
class OrderBookServer:
    root: Path  # state/postgres: data/ and the roles' passwords
    port: int

    @property
    def data(self) -> Path:
        return self.root / "data"

    def password_file(self, role: str) -> Path:
        return self.root / f"{role}.password"

    def password(self, role: str) -> str:
        """The role's password: made (random) the first time it is asked for, then kept."""
        file = self.password_file(role)
        if not file.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            file.touch(mode=0o600)
            file.write_text(secrets.token_urlsafe(24) + "\n")
        return file.read_text().strip()

    def prepare(self) -> None:
        """The cluster, made once; later starts find it and keep it."""
        self.root.mkdir(parents=True, exist_ok=True)
        if (self.data / "PG_VERSION").exists():
            return
        user = server_user()
        for role in ROLES:
            self.password(role)
        if user is not None:
            reachable(self.root)
            owner = pwd.getpwnam(user)
            for path in (self.root, *(self.password_file(r) for r in ROLES)):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PGDATA": str(self.data),
            "PG_BIN": str(pg_bin()),
            "SUPERUSER_PASSWORD_FILE": str(self.password_file("superuser")),
            "MIGRATOR_PASSWORD_FILE": str(self.password_file("migrator")),
            "ORDERS_PASSWORD_FILE": str(self.password_file("orders")),
        }
        # As the server's user and only its group (root's group would not get `reachable`'s
        # passage, which is for others), as supervisord runs the server. (None: as this one.)
        subprocess.run(
            [str(INIT)],
            env=env,
            cwd=self.root,
            check=True,
            user=user,
            group=user,
            extra_groups=[] if user else None,
        )

    def server(self) -> tuple[list[str], dict[str, str]]:
        """The supervisord program: `serve` below, which becomes PostgreSQL."""
        return [sys.executable, "-m", "shop.dev.order_book", str(self.root), str(self.port)], {}

    def postgres(self) -> list[str]:
        command = [str(pg_bin() / "postgres"), "-D", str(self.data), "-p", str(self.port)]
        return [*command, "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="]

    def serve(self) -> None:
        """PostgreSQL in this process's place, as the server's user."""
        user = server_user()
        if user is not None:
            reachable(self.root)
            owner = pwd.getpwnam(user)
            os.setgroups([])
            os.setgid(owner.pw_gid)
            os.setuid(owner.pw_uid)
        command = self.postgres()
        os.execv(command[0], command)

    def supervisor_options(self) -> dict[str, str]:
        # SIGINT: a fast shutdown (SIGTERM waits for every client to leave first).
        return {"stopsignal": "INT"}

    def url(self, role: str) -> str:
        return f"postgresql://shop_{role}@127.0.0.1:{self.port}/shop"

    def migrator_env(self) -> dict[str, str]:
        return {
            "MIGRATOR_DATABASE_URL": self.url("migrator"),
            "MIGRATOR_DATABASE_PASSWORD": self.password("migrator"),
        }

    def service_env(self) -> dict[str, str]:
        return {
            "ORDERS_DATABASE_URL": self.url("orders"),
            "ORDERS_DATABASE_PASSWORD": self.password("orders"),
        }


if __name__ == "__main__":
    OrderBookServer(Path(sys.argv[1]), int(sys.argv[2])).serve()
