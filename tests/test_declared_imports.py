"""Each member declares every package its code imports. A service is its own uv member and
image: a package it imports that only arrives through another's dependencies (restate through
shop-shared, starlette through fastapi) breaks its image the day that one drops it.

No stack: the sources are read with `ast`, and each import is traced to the distribution that
installs it in the dev venv. Code outside the members (tests, bench, deploy) runs in the dev
venv only, so it may import what the root project, its dev group or any member declares."""

import ast
import importlib.metadata
import importlib.util
import re
import sys
import tomllib
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKSPACE = tomllib.loads((ROOT / "pyproject.toml").read_text())
MEMBERS = sorted(
    path.parent
    for pattern in WORKSPACE["tool"]["uv"]["workspace"]["members"]
    for path in ROOT.glob(f"{pattern}/pyproject.toml")
)
VENV = Path(sys.prefix).resolve()
# Run in the dev venv only, so held to what the root, its dev group and the members declare.
DEV_ONLY = ["tests", "bench", "deploy", *(f"{m.relative_to(ROOT)}/tests" for m in MEMBERS)]


def canonical(name: str) -> str:
    """PEP 503's normalized name: `PyYAML`, `restate_sdk[serde]>=1.3` -> `pyyaml`, `restate-sdk`."""
    bare = re.match(r"[A-Za-z0-9._-]+", name)
    assert bare, name
    return re.sub(r"[-_.]+", "-", bare.group()).lower()


def project(member: Path) -> dict:
    return tomllib.loads((member / "pyproject.toml").read_text())["project"]


def declared(member: Path) -> set[str]:
    """The member itself and what it lists as dependencies."""
    meta = project(member)
    return {canonical(meta["name"]), *map(canonical, meta.get("dependencies", []))}


@cache
def first_party() -> dict[str, str]:
    """`shop.gateway` -> `shop-gateway`: each member's packages under the `shop` namespace
    (installed editable, so not traceable through files the way a wheel is)."""
    return {
        f"shop.{package.name}": canonical(project(member)["name"])
        for member in MEMBERS
        for package in (member / "src" / "shop").iterdir()
        if package.is_dir() and not package.name.startswith("_")
    }


def imports(source: Path) -> Iterator[str]:
    """Every absolute import in a file, as dotted names: `from a import b` gives `a.b`, which
    is a module or a name in `a` (told apart where it matters, in a shared namespace)."""
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


@cache
def top_levels() -> Mapping[str, list[str]]:
    return importlib.metadata.packages_distributions()


@cache
def owners(top: str) -> dict[Path, str]:
    """Each file of the distributions that install `top` -> the one that installed it."""
    return {
        Path(str(dist.locate_file(file))).resolve(): canonical(dist.metadata["Name"])
        for dist in importlib.metadata.distributions()
        if dist.metadata["Name"] in top_levels()[top]
        for file in dist.files or ()
    }


def origin(module: str) -> Path | None:
    """The file a module is read from: the nearest one along `a.b.c`, `a.b`, `a` that is a
    module (`c` may be a name in `a.b`) and not a bare namespace directory."""
    while module:
        try:
            spec = importlib.util.find_spec(module)
        except ImportError:
            spec = None
        if spec and spec.has_location and spec.origin:
            return Path(spec.origin).resolve()
        module = module.rpartition(".")[0]
    return None


@cache
def distribution(module: str) -> str | None:
    """The distribution a module comes from; None for the standard library and the repo's own
    files (`tests.invariants`)."""
    top = module.partition(".")[0]
    if top in sys.stdlib_module_names or module == "shop":
        return None
    if top == "shop":  # a namespace every member adds to: its package says which member
        package = ".".join(module.split(".")[:2])
        return first_party().get(package, f"<no member provides {package}>")
    dists = top_levels().get(top, [])
    if len(set(map(canonical, dists))) == 1:
        return canonical(dists[0])
    # A namespace several distributions share (opentelemetry): the module's own file says.
    path = origin(module)
    if dists and path in owners(top):
        return owners(top)[path]
    if path and path.is_relative_to(ROOT) and not path.is_relative_to(VENV):
        return None
    return f"<{module}: from no distribution>"


def beside(source: Path, module: str) -> bool:
    """A script's sibling module (bench/run.py imports `orders`, bench/orders.py)."""
    top = module.partition(".")[0]
    return (source.parent / f"{top}.py").exists() or (source.parent / top).is_dir()


def undeclared(sources: list[Path], allowed: set[str]) -> dict[str, set[str]]:
    """Each distribution imported but not allowed, with where: `{"starlette": {"deps.py
    (starlette)"}}`."""
    found: dict[str, set[str]] = {}
    for source in sources:
        for module in imports(source):
            dist = None if beside(source, module) else distribution(module)
            if dist and dist not in allowed:
                where = source.relative_to(ROOT) if source.is_relative_to(ROOT) else source
                found.setdefault(dist, set()).add(f"{where} ({module.partition('.')[0]})")
    return found


def report(found: dict[str, set[str]]) -> str:
    return "imported, not declared:\n" + "\n".join(
        f"  {dist}: {', '.join(sorted(where))}" for dist, where in sorted(found.items())
    )


@pytest.mark.parametrize("member", MEMBERS, ids=[m.name for m in MEMBERS])
def test_a_member_declares_every_package_its_code_imports(member: Path) -> None:
    sources = sorted((member / "src").rglob("*.py"))
    assert sources
    found = undeclared(sources, declared(member))
    assert not found, report(found)


def test_code_outside_the_members_imports_only_what_the_dev_venv_declares() -> None:
    root = WORKSPACE["project"]
    allowed = {
        *map(canonical, root["dependencies"]),
        *map(canonical, WORKSPACE["dependency-groups"]["dev"]),
        *(dist for member in MEMBERS for dist in declared(member)),
    }
    sources = sorted(source for folder in DEV_ONLY for source in (ROOT / folder).rglob("*.py"))
    assert len(sources) > 50
    found = undeclared(sources, allowed)
    assert not found, report(found)


def test_the_check_sees_an_import_that_only_arrives_through_another_package(
    tmp_path: Path,
) -> None:
    source = tmp_path / "deps.py"
    source.write_text("import asyncio\nimport fastapi\nfrom starlette.requests import Request\n")
    found = undeclared([source], {"fastapi"})
    assert found == {"starlette": {f"{source} (starlette)"}}
    # A namespace several distributions share is traced to the one that has the module.
    assert distribution("opentelemetry.sdk.trace.TracerProvider") == "opentelemetry-sdk"
    assert distribution("opentelemetry.trace") == "opentelemetry-api"
    assert distribution("shop.shared.calls.call") == "shop-shared"
