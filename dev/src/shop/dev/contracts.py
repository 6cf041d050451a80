"""The services' wire contracts: each Restate handler's input and output JSON schemas, as the
SDK publishes them to Restate at discovery, snapshotted in contracts/<Service>.json.

`python -m shop.dev.contracts` (`./task contracts`) compares the code with the snapshots and
fails on a change that a caller or callee still running the old code would break on:
a handler removed or renamed, a body required where none was, an input that accepts less
(a required field added, a type narrowed, an enum value removed, a bound tightened), an
output that may carry what the old one could not (a field removed or renamed, made optional,
a type widened, an enum value added). Restate keeps an old workflow invocation on its old
deployment, but its calls land on the newest callee: both directions matter.

Additive changes (a new handler, an optional input field, a new output field, an input that
accepts more) pass, and `--update` writes them to the snapshots. A breaking change goes in
three steps (docs: expand, migrate the callers, contract); only the last one, once nothing
runs the old shape, is written with `--update --breaking`.
"""

import argparse
import importlib
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from restate.discovery import InputPayload, compute_discovery
from restate.endpoint import Endpoint

REPO = Path(__file__).resolve().parents[4]
FOLDER = REPO / "contracts"
# The packages whose process serves Restate services (each lists them as SERVICES).
PROCESSES = ("shop.payments", "shop.inventory", "shop.email", "shop.fulfilment", "shop.orders")

Schema = Any  # a JSON schema: a dict, or True (anything)
Contract = dict[str, Any]


def current() -> dict[str, Contract]:
    """Every service's contract as the code has it now, by service name."""
    endpoint = Endpoint()
    for package in PROCESSES:
        endpoint.bind(*importlib.import_module(f"{package}.__main__").SERVICES)
    contracts = {}
    for service in compute_discovery(endpoint, "bidi").services:
        handlers = {}
        for h in service.handlers:
            body = h.input.jsonSchema if isinstance(h.input, InputPayload) else None
            handlers[h.name] = {
                "type": h.ty.value if h.ty else None,
                "takes_body": body is not None,
                "input": body,
                "output": h.output.jsonSchema if h.output else None,
            }
        contracts[service.name] = {"type": service.ty.value, "handlers": handlers}
    return contracts


def snapshots(folder: Path = FOLDER) -> dict[str, Contract]:
    return {f.stem: json.loads(f.read_text()) for f in sorted(folder.glob("*.json"))}


def write(contracts: dict[str, Contract], folder: Path = FOLDER) -> None:
    folder.mkdir(exist_ok=True)
    for stale in set(snapshots(folder)) - set(contracts):
        (folder / f"{stale}.json").unlink()
    for name, contract in contracts.items():
        (folder / f"{name}.json").write_text(json.dumps(contract, indent=2, sort_keys=True) + "\n")


# ---- the rules --------------------------------------------------------------------------


@dataclass
class Side:
    """One side of a handler's schema: `wide` must accept every value `narrow` allows. For an
    input, wide is the new schema and narrow the old (old callers' bodies must still be
    taken); for an output, wide is the old and narrow the new (old callers must still read
    every answer)."""

    kind: Literal["input", "output"]
    wide_defs: dict[str, Schema]
    narrow_defs: dict[str, Schema]

    def resolve(self, schema: Schema, defs: dict[str, Schema]) -> Schema:
        while isinstance(schema, dict) and "$ref" in schema:
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**defs[schema["$ref"].rsplit("/", 1)[-1]], **rest}
        return schema

    def lost(self, field: str) -> str:
        if self.kind == "input":
            return f"field {field} is required now (an older caller may not send it)"
        return f"field {field} was removed or made optional (an older caller reads it)"

    def narrowed(self, what: str) -> str:
        if self.kind == "input":
            return f"{what} is no longer accepted (an older caller may send it)"
        return f"{what} may now be answered (an older caller does not expect it)"


def branches(schema: Schema) -> list[Schema] | None:
    if isinstance(schema, dict):
        return schema.get("anyOf") or schema.get("oneOf")
    return None


def values(schema: dict[str, Any]) -> list[Any] | None:
    if "const" in schema:
        return [schema["const"]]
    return schema.get("enum")


def types(schema: dict[str, Any]) -> set[str] | None:
    t = schema.get("type")
    if t is None:
        return None
    return {t} if isinstance(t, str) else set(t)


LOWER = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
UPPER = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")
EXACT = ("pattern", "format")


def accepts(
    wide: Schema, narrow: Schema, at: str, side: Side, seen: frozenset = frozenset()
) -> list[str]:
    """Why `wide` does not accept everything `narrow` allows (nothing: it does)."""
    key = (id(wide), id(narrow))
    if key in seen:  # a recursive model: already being compared
        return []
    seen = seen | {key}
    wide, narrow = side.resolve(wide, side.wide_defs), side.resolve(narrow, side.narrow_defs)
    if wide is True or wide == {}:
        return []
    if narrow is True or narrow == {}:
        return [f"{at}: {side.narrowed('anything but ' + describe(wide))}"]
    if ways := branches(narrow):
        return [p for way in ways for p in accepts(wide, way, at, side, seen)]
    if ways := branches(wide):
        if any(not accepts(way, narrow, at, side, seen) for way in ways):
            return []
        return [f"{at}: {side.narrowed(describe(narrow))}"]

    wide_values, narrow_values = values(wide), values(narrow)
    if wide_values is not None:
        if narrow_values is None:
            return [f"{at}: {side.narrowed('any ' + describe(narrow))}"]
        missing = [v for v in narrow_values if v not in wide_values]
        return [f"{at}: {side.narrowed(f'the value {v!r}')}" for v in missing]
    wide_types, narrow_types = types(wide), types(narrow)
    if wide_types is not None:
        if narrow_types is None:
            return [f"{at}: {side.narrowed('any type but ' + describe(wide))}"]
        if "number" in wide_types:
            wide_types = wide_types | {"integer"}
        if extra := sorted(narrow_types - wide_types):
            return [f"{at}: {side.narrowed('a value of type ' + ' or '.join(extra))}"]
    if narrow_values is not None:  # a set of values of a type wide takes
        return []

    problems = []
    for bound in LOWER:
        if bound in wide and narrow.get(bound, float("-inf")) < wide[bound]:
            problems.append(f"{at}: {side.narrowed(f'a value under {bound} {wide[bound]}')}")
    for bound in UPPER:
        if bound in wide and narrow.get(bound, float("inf")) > wide[bound]:
            problems.append(f"{at}: {side.narrowed(f'a value over {bound} {wide[bound]}')}")
    for exact in EXACT:
        if exact in wide and narrow.get(exact) != wide[exact]:
            problems.append(f"{at}: {side.narrowed(f'a value not of {exact} {wide[exact]!r}')}")
    problems += fields(wide, narrow, at, side, seen)
    if isinstance(wide.get("items"), dict):
        problems += accepts(wide["items"], narrow.get("items", True), f"{at}[]", side, seen)
    extra_w, extra_n = wide.get("additionalProperties"), narrow.get("additionalProperties")
    if isinstance(extra_w, dict):
        problems += accepts(
            extra_w, extra_n if extra_n is not None else True, f"{at}{{}}", side, seen
        )
    return problems


def fields(wide: Schema, narrow: Schema, at: str, side: Side, seen: frozenset) -> list[str]:
    wide_props, narrow_props = wide.get("properties", {}), narrow.get("properties", {})
    narrow_required = set(narrow.get("required", []))
    problems = [
        f"{at}: {side.lost(name)}"
        for name in wide.get("required", [])
        if name not in narrow_required
    ]
    if side.kind == "output":  # also the optional ones: an older caller may read them
        problems += [
            f"{at}: {side.lost(name)}"
            for name in wide_props
            if name not in narrow_props and name not in wide.get("required", [])
        ]
    for name, schema in narrow_props.items():
        if name in wide_props:
            problems += accepts(wide_props[name], schema, f"{at}.{name}", side, seen)
        elif wide.get("additionalProperties") is False:
            problems.append(f"{at}: {side.narrowed(f'a field {name}')}")
    return problems


def describe(schema: Schema) -> str:
    if not isinstance(schema, dict):
        return "anything"
    return schema.get("title") or schema.get("type") or "a value of that schema"


def side_problems(old: Schema, new: Schema, kind: Literal["input", "output"], at: str) -> list[str]:
    if old is None or new is None:
        return []
    wide, narrow = (new, old) if kind == "input" else (old, new)
    defs = (
        (wide.get("$defs", {}) if isinstance(wide, dict) else {}),
        (narrow.get("$defs", {}) if isinstance(narrow, dict) else {}),
    )
    return accepts(wide, narrow, at, Side(kind, *defs))


def breaking(old: dict[str, Contract], new: dict[str, Contract]) -> list[str]:
    """Every change from `old` to `new` that breaks an older caller or callee, named by
    service, handler and field."""
    problems = []
    for service, was in old.items():
        if service not in new:
            problems.append(f"{service}: the service was removed or renamed")
            continue
        for name, handler in was["handlers"].items():
            now = new[service]["handlers"].get(name)
            problems += handler_problems(f"{service}/{name}", handler, now)
    return problems


def handler_problems(where: str, was: dict[str, Any], now: dict[str, Any] | None) -> list[str]:
    if now is None:
        return [f"{where}: the handler was removed or renamed"]
    problems = []
    if now["type"] != was["type"]:
        problems.append(f"{where}: its type changed from {was['type']} to {now['type']}")
    if now["takes_body"] != was["takes_body"]:
        sends = "none" if now["takes_body"] else "one"
        problems.append(
            f"{where}: a body is {'required' if now['takes_body'] else 'refused'} now"
            f" (an older caller sends {sends})"
        )
    problems += side_problems(was["input"], now["input"], "input", f"{where} input")
    if was["output"] is not None and now["output"] is None:
        problems.append(f"{where} output: answers nothing now (an older caller reads it)")
    problems += side_problems(was["output"], now["output"], "output", f"{where} output")
    return problems


def changed(old: dict[str, Contract], new: dict[str, Contract]) -> Iterator[str]:
    for service in sorted(set(old) | set(new)):
        if old.get(service) != new.get(service):
            yield service


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--update", action="store_true", help="write compatible changes to contracts/"
    )
    parser.add_argument(
        "--breaking",
        action="store_true",
        help="with --update: write breaking changes too (once nothing runs the old shape)",
    )
    args = parser.parse_args(argv)
    old, new = snapshots(FOLDER), current()
    problems = breaking(old, new)
    for problem in problems:
        print(f"BREAKING {problem}")
    differ = list(changed(old, new))
    if args.update and (not problems or args.breaking):
        write(new, FOLDER)
        print(f"contracts/ written ({', '.join(differ) or 'no change'})")
        return 0
    if problems:
        print(f"{len(problems)} breaking change(s): see the docs on expand, migrate, contract")
        return 1
    if differ:
        print(
            f"compatible changes to {', '.join(differ)}: `./task contracts -- --update`"
            " records them"
        )
    else:
        print("contracts/ matches the code")
    return 0


if __name__ == "__main__":
    sys.exit(main())
