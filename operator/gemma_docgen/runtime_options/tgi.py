"""`text-generation-launcher`'s options, read from launcher/src/main.rs: a clap (derive) `struct Args`.

clap's derive rules (clap 4, which the launcher's Cargo.lock pins): a field `max_input_tokens` with
`#[clap(long)]` is `--max-input-tokens`; `short` is `-` and the field's first letter; `env` reads the
field's name in upper case (MAX_INPUT_TOKENS); `alias`/`aliases`/`short_alias` add hidden spellings. The
value of a ValueEnum type is one of its variants in kebab-case, or the `#[clap(name = "...")]` it gives.
`Args::parse()` also answers `-h`/`--help` and (with `#[clap(version)]`) `-V`/`--version`.
"""

from __future__ import annotations

import re

from gemma_docgen.runtime_options.sources import SourceMissing
from gemma_operator.catalog.versions.options import RuntimeOption, Syntax

MAIN = "launcher/src/main.rs"
_ATTRIBUTE = re.compile(r"#\[clap\((?P<body>.*)\)\]\s*$")
_FIELD = re.compile(r"^(?:pub\s+)?(?P<name>[a-z_][a-z0-9_]*)\s*:\s*(?P<type>.+?),?\s*$")
_KEY = re.compile(r"(?P<key>[a-z_]+)(?:\s*=\s*(?P<value>\"[^\"]*\"|'[^']'|\[[^\]]*\]|[^,]+))?")


class ShapeChanged(SourceMissing):
    """The launcher's Args no longer has the shape this reader knows."""


def _block(text: str, header: str) -> str:
    start = text.find(header)
    if start < 0:
        raise ShapeChanged(f"{MAIN} has no `{header}`")
    open_at = text.index("{", start)
    depth = 0
    for index in range(open_at, len(text)):
        depth += {"{": 1, "}": -1}.get(text[index], 0)
        if depth == 0:
            return text[open_at + 1 : index]
    raise ShapeChanged(f"{MAIN}: `{header}` never closes")


def _attributes(body: str) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for match in _KEY.finditer(body):
        value = match.group("value")
        found[match.group("key")] = value.strip() if value else None
    return found


def _kebab(camel: str) -> str:
    """A Rust variant name as clap's ValueEnum spells it (heck's kebab-case: BitsandbytesNf4 -> bitsandbytes-nf4)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", camel).lower()


def _value_enums(text: str) -> dict[str, tuple[str, ...]]:
    """Each `#[derive(..., ValueEnum, ...)] enum` of the file and the values clap accepts for it."""
    enums: dict[str, tuple[str, ...]] = {}
    for match in re.finditer(
        r"#\[derive\([^)]*\bValueEnum\b[^)]*\)\]\s*(?:#\[[^\]]*\]\s*)*(?:pub\s+)?enum\s+(\w+)", text
    ):
        name = match.group(1)
        body = re.sub(r"//[^\n]*", "", _block(text[match.start() :], f"enum {name}"))
        values: list[str] = []
        rename: str | None = None
        for line in (part.strip() for part in body.splitlines()):
            if renamed := re.match(r'#\[clap\(name\s*=\s*"([^"]+)"\)\]', line):
                rename = renamed.group(1)
            elif variant := re.match(r"([A-Z]\w*)\s*,?$", line):
                values.append(rename or _kebab(variant.group(1)))
                rename = None
        enums[name] = tuple(values)
    return enums


def _unwrap(rust_type: str) -> str:
    while match := re.fullmatch(r"(?:Option|Vec)<(.+)>", rust_type.strip()):
        rust_type = match.group(1)
    return rust_type.strip()


def _unquote(value: str) -> str:
    return value.strip().strip("\"'")


def launcher_options(text: str) -> list[RuntimeOption]:
    """Every option of `struct Args`, in the order clap declares them, with env variables and enum values."""
    enums = _value_enums(text)
    options: list[RuntimeOption] = []
    pending: dict[str, str | None] = {}
    for line in (part.strip() for part in _block(text, "struct Args").splitlines()):
        if not line or line.startswith("//"):
            continue
        if attribute := _ATTRIBUTE.match(line):
            pending.update(_attributes(attribute.group("body")))
            continue
        field = _FIELD.match(line)
        if not field:
            raise ShapeChanged(f"{MAIN} struct Args: cannot read {line!r}")
        name, attributes, pending = field.group("name"), pending, {}
        spellings: list[str] = []
        if "long" in attributes:
            spellings.append(f"--{_unquote(attributes['long'] or name.replace('_', '-'))}")
        if "short" in attributes:
            spellings.append(f"-{_unquote(attributes['short'] or name[0])}")
        for key in ("alias", "visible_alias", "aliases", "visible_aliases"):
            if value := attributes.get(key):
                spellings += [f"--{_unquote(a)}" for a in value.strip("[]").split(",") if a.strip()]
        for key in ("short_alias", "visible_short_alias"):
            if value := attributes.get(key):
                spellings.append(f"-{_unquote(value)}")
        if not spellings:
            raise ShapeChanged(f"{MAIN} struct Args field {name} has neither long nor short")
        env: tuple[str, ...] = ()
        if "env" in attributes:
            env = (_unquote(attributes["env"] or name.upper()),)
        values = enums.get(_unwrap(field.group("type")), ())
        options.append(RuntimeOption(spellings=tuple(spellings), env=env, values=values))
    header = text[: text.find("struct Args")]
    options.append(RuntimeOption(spellings=("--help", "-h")))
    if re.search(r"#\[clap\([^)]*\bversion\b", header[-300:]):
        options.append(RuntimeOption(spellings=("--version", "-V")))
    return options


def syntax(text: str) -> Syntax:
    abbreviations = "infer_long_args" in text
    return Syntax(
        long_underscores=False,
        equals_value=True,
        abbreviations=abbreviations,
        attached_short_values=True,
        evidence=(
            f"clap reads --flag=value and a one-letter option's attached value (-p8080); {MAIN} "
            + ("sets infer_long_args" if abbreviations else "does not set infer_long_args, so clap takes whole names")
            + "; clap has no --flag_name form"
        ),
    )
