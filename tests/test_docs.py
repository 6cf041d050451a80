"""The docs stay honest: every setting's environment variable is in docs/configuration.md, and
every relative link in README.md and docs/ reaches a file, and a heading when it names one.

No stack: the settings classes are found by importing the shop's modules that define one, so a
new setting (or a new settings class) without a line in the docs fails here."""

import importlib
import inspect
import re
from pathlib import Path

import pytest
from pydantic import AliasChoices, AliasPath
from pydantic_settings import BaseSettings

import shop

ROOT = Path(__file__).resolve().parents[1]
CONFIGURATION = ROOT / "docs" / "configuration.md"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# A module that subclasses a settings class names one in its class statement.
DEFINES_SETTINGS = re.compile(r"^class\s+\w+\([^)]*Settings", re.MULTILINE)


def settings_modules() -> list[str]:
    """Every shop.* module (in libs, services and dev) that defines a settings class. Found by
    reading the sources, not listed, so that a new one cannot be missed; __main__ modules
    start servers and alembic's env.py runs migrations, so neither is imported."""
    names = []
    for root in map(Path, shop.__path__):  # a namespace package spread over the workspace
        for source in sorted(root.rglob("*.py")):
            parts = source.relative_to(root.parent).with_suffix("").parts
            if parts[-1] == "__main__" or "migrations" in parts:
                continue
            if DEFINES_SETTINGS.search(source.read_text(encoding="utf-8")):
                names.append(".".join(parts).removesuffix(".__init__"))
    return names


def settings_classes() -> list[type[BaseSettings]]:
    for name in settings_modules():
        importlib.import_module(name)
    found: set[type[BaseSettings]] = set()
    pending = [BaseSettings]
    while pending:
        for sub in pending.pop().__subclasses__():
            if sub not in found:
                found.add(sub)
                pending.append(sub)
    return sorted(
        (c for c in found if c.__module__.startswith("shop.")),
        key=lambda c: (c.__module__, c.__qualname__),
    )


def environment_names(cls: type[BaseSettings], field: str) -> list[str]:
    """The variables pydantic-settings reads for a field: its alias (or each alias choice),
    else the env prefix and the field's name; upper case, as the docs write them."""
    info = cls.model_fields[field]
    alias = info.validation_alias or info.alias
    if isinstance(alias, str):
        names = [alias]
    elif isinstance(alias, AliasChoices):
        names = [c for c in alias.choices if isinstance(c, str)]
        names += [str(c.path[0]) for c in alias.choices if isinstance(c, AliasPath)]
    elif isinstance(alias, AliasPath):
        names = [str(alias.path[0])]
    else:
        names = [cls.model_config.get("env_prefix", "") + field]
    return [name.upper() for name in names]


def test_the_settings_classes_are_found() -> None:
    # If discovery broke, the test below would pass on nothing.
    names = {c.__qualname__ for c in settings_classes()}
    assert {"ShopSettings", "ServiceSettings", "GatewaySettings", "MigratorSettings"} <= names


def declaring_class(cls: type[BaseSettings], field: str) -> type:
    """The class that declares a field (a subclass may only change its default)."""
    return next(c for c in reversed(cls.__mro__) if field in inspect.get_annotations(c))


def test_every_setting_is_documented() -> None:
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]*)`", CONFIGURATION.read_text()))
    missing = {
        f"{owner.__module__}.{owner.__qualname__}.{field}: {' or '.join(names)}"
        for cls in settings_classes()
        for field in cls.model_fields
        if not documented.intersection(names := environment_names(cls, field))
        for owner in [declaring_class(cls, field)]
    }
    assert not missing, "not in docs/configuration.md:\n" + "\n".join(sorted(missing))


def github_anchor(heading: str) -> str:
    """The id GitHub gives a Markdown heading: lower case, punctuation dropped, spaces to -."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def without_fences(text: str) -> str:
    """Markdown outside fenced code blocks, where `# x` is no heading and `[x](y)` no link."""
    return re.sub(r"^[ \t]*```.*?^[ \t]*```", "", text, flags=re.MULTILINE | re.DOTALL)


def anchors(page: Path) -> set[str]:
    """Every heading's id, with GitHub's -1, -2... for repeated headings."""
    seen: dict[str, int] = {}
    ids = set()
    for heading in re.findall(r"^#+\s+(.+?)\s*#*$", without_fences(page.read_text()), re.M):
        slug = github_anchor(heading.replace("`", ""))  # code in a heading keeps its text
        ids.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return ids


def links(page: Path) -> list[str]:
    # Inline code stays: a link's text may be code ([`./task dev`](...)).
    return re.findall(r"\]\(([^)\s]+)\)", without_fences(page.read_text()))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    for target in links(page):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target}: no heading #{anchor} in {resolved.relative_to(ROOT)}")
    assert not broken, f"{page.relative_to(ROOT)}:\n" + "\n".join(broken)
