"""Stripe's form encoding (`metadata[order_id]=x`, `payment_method_types[0]=card`) to nested
values, so the emulator reads requests the way Stripe does."""

import re
from typing import Any

_PART = re.compile(r"\[([^\]]*)\]")


def decode(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        head, _, rest = key.partition("[")
        path = [head, *_PART.findall("[" + rest)] if rest else [head]
        node: Any = out
        for part, child in zip(path, [*path[1:], None], strict=True):
            if child is None:
                _put(node, part, value)
            else:
                default: Any = [] if child.isdigit() or child == "" else {}
                node = _get_or_add(node, part, default)
    return out


def _put(node: Any, part: str, value: Any) -> None:
    if isinstance(node, list):
        node.append(value)
    else:
        node[part] = value


def _get_or_add(node: Any, part: str, default: Any) -> Any:
    if isinstance(node, list):
        index = int(part) if part else len(node)
        while len(node) <= index:
            node.append(type(default)())
        return node[index]
    return node.setdefault(part, default)
