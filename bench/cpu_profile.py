"""Where each process's CPU goes while it serves orders: the shop's closed loop (as
bench/orders.py runs it), with py-spy sampling every Python process of the stack meanwhile.
Prints, per process, its CPU ms per order (Restate's too, which py-spy cannot look into) and
where its samples were: by library (the frame on the CPU, its module's package) and the
functions that were on the CPU most. Sampling costs the processes some CPU itself, so the
orders/s of this run are not the benchmark's: bench/orders.py measures those.

    ./task bench -- profile [--clients 32] [--seconds 20] [--top 8] [--keep DIR] [--skeleton]

With --skeleton, the same for the skeleton order's processes (bench/skeleton.py) and Restate:
where the call graph's own cost goes, with no side effect in it.
"""

import argparse
import asyncio
import re
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

import skeleton
from orders import Cpu, Shop, Skeleton, client_session, closed_loop, restock

from shop.dev.stack import NO_CLIENT_LIMITS, ONE_SHOTS, Ports, Stack

PY_SPY = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "py-spy"
FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def library(path: str) -> str:
    """What a frame's file belongs to: a package of site-packages, the shop's own module, or
    the standard library's."""
    if "/site-packages/" in path:
        return path.split("/site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if "/shop/" in path:
        parts = path.split("/shop/", 1)[1].removesuffix(".py").split("/")
        return "shop." + ".".join(parts[:2])
    match = re.search(r"/python3\.\d+/([^/]+)", path)
    return f"stdlib {match.group(1).removesuffix('.py')}" if match else path


def where(raw: str) -> tuple[int, Counter, Counter]:
    """py-spy's raw output (one stack per line, root first, then its count): the samples, and
    their counts by the library and by the function on the CPU (the leaf frame)."""
    total, libraries, functions = 0, Counter[str](), Counter[str]()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        leaf = stack.rsplit(";", 1)[-1]
        match = FRAME.match(leaf)
        function, path = (match["function"], match["file"]) if match else (leaf, "")
        total += int(count)
        libraries[library(path)] += int(count)
        functions[f"{function} ({library(path)})"] += int(count)
    return total, libraries, functions


def is_python(pid: int) -> bool:
    return "python" in Path(f"/proc/{pid}/exe").resolve().name


def record(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    command = [str(PY_SPY), "record", "--pid", str(pid), "--duration", str(int(seconds))]
    command += ["--rate", "200", "--format", "raw", "--nonblocking", "--full-filenames"]
    command += ["--subprocesses"]  # a gateway with several workers
    return subprocess.Popen([*command, "-o", str(out)], stdout=subprocess.DEVNULL)


async def load(stack: Stack, orders: type[Shop | Skeleton], clients: int, seconds: float) -> int:
    async with client_session() as session:
        source = orders(stack, session)
        await closed_loop(source, 4, 2)  # warm up
        return len(await closed_loop(source, clients, seconds))


def profile(stack: Stack, args: argparse.Namespace, folder: Path) -> None:
    if args.skeleton:
        bare = skeleton.start(stack)
        try:
            pids = {f"skeleton {r}": p.pid for r, p in zip(skeleton.ROLES, bare, strict=True)}
            restate = int(stack.ctl("pid", "restate").strip())
            sample(stack, Skeleton, Cpu({"restate": restate, **pids}), args, folder)
        finally:
            skeleton.stop(bare)
    else:
        restock(stack)
        cpu = Cpu.of(stack, [p for p in stack.programs() if p not in ONE_SHOTS])
        sample(stack, Shop, cpu, args, folder)


def sample(
    stack: Stack, orders: type[Shop | Skeleton], cpu: Cpu, args: argparse.Namespace, folder: Path
) -> None:
    pythons = {name: pid for name, pid in cpu.pids.items() if is_python(pid)}
    pythons.pop("load generator")
    asyncio.run(load(stack, orders, 4, 2))  # imports and connections before the samples
    before = cpu.read()
    spies = {
        name: record(pid, args.seconds, folder / f"{name}.txt") for name, pid in pythons.items()
    }
    time.sleep(0.5)  # py-spy attached
    done = asyncio.run(load(stack, orders, args.clients, args.seconds))
    per_order = cpu.per_order(before, done)
    for spy in spies.values():
        spy.wait()
    print(
        f"{done} {orders.__name__.lower()} orders in {args.seconds:g}s with {args.clients}"
        " clients, sampled at 200 Hz"
    )
    print("CPU per order (ms): " + ", ".join(f"{n} {ms:.1f}" for n, ms in per_order.items()))
    for name, ms in per_order.items():
        out = folder / f"{name}.txt"
        if name not in spies or not out.exists():
            continue
        total, libraries, functions = where(out.read_text())
        if not total:
            continue
        print(f"\n{name}: {ms:.1f} ms of CPU per order; {total} samples on the CPU")
        shares = ", ".join(f"{lib} {n / total:.0%}" for lib, n in libraries.most_common(args.top))
        print(f"  by library: {shares}")
        for function, n in functions.most_common(args.top):
            print(f"  {n / total:5.1%}  {function}  ({ms * n / total:.2f} ms/order)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--top", type=int, default=8, help="libraries and functions shown")
    parser.add_argument("--keep", type=Path, help="keep py-spy's raw profiles in this folder")
    parser.add_argument(
        "--skeleton", action="store_true", help="the skeleton's processes (bench/skeleton.py)"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="shop-profile-") as state:
        folder = args.keep or Path(state) / "profiles"
        folder.mkdir(parents=True, exist_ok=True)
        stack = Stack(
            state=Path(state),
            ports=Ports.free(),
            service_env={"CANCEL_WINDOW_SECONDS": "0", **NO_CLIENT_LIMITS},
        )
        with stack.running(timeout=120):
            profile(stack, args, folder)


if __name__ == "__main__":
    main()
