"""`llama-server`'s options, read from llama.cpp's common/arg.cpp (common_params_parser_init).

Each option is `add_opt(common_arg({"-c", "--ctx-size"}, [{"--no-..."},] ...).set_env("LLAMA_ARG_CTX_SIZE")
.set_examples({...}))`. add_opt keeps an option for llama-server when its examples hold LLAMA_EXAMPLE_SERVER
or LLAMA_EXAMPLE_COMMON (the default) and its excludes do not hold LLAMA_EXAMPLE_SERVER; a few options are
added inside `if (ex == LLAMA_EXAMPLE_SERVER) {...} else {...}`. common_arg::get_env adds LLAMA_ARG_NO_...
for an option with negative spellings. common_params_parse_ex reads the environment first and the command
line after it, so an argument overrides its variable; it rewrites `--flag_name` to `--flag-name` and takes
no `--flag=value` form.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from gemma_docgen.runtime_options.sources import SourceMissing
from gemma_operator.catalog.versions.options import RuntimeOption, Syntax

ARG = "common/arg.cpp"
SERVER, COMMON = "LLAMA_EXAMPLE_SERVER", "LLAMA_EXAMPLE_COMMON"
_TOKEN = re.compile(
    r"""(?P<comment>//[^\n]*|/\*.*?\*/)|(?P<raw>R"(?P<delim>[^(\s]*)\(.*?\)(?P=delim)")|(?P<string>"(?:\\.|[^"\\])*")"""
    r"""|(?P<char>'(?:\\.|[^'\\])+')|(?P<name>[A-Za-z_]\w*)|(?P<number>\d[\w.]*)|(?P<punct>::|==|!=|\S)""",
    re.DOTALL,
)


class ShapeChanged(SourceMissing):
    """common/arg.cpp no longer has the shape this reader knows."""


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str


def _tokens(source: str) -> list[_Token]:
    found: list[_Token] = []
    for match in _TOKEN.finditer(source):
        kind = match.lastgroup
        if kind == "delim":
            kind = "raw"
        if kind in {"comment", None}:
            continue
        found.append(_Token(kind if kind != "raw" else "string", match.group(0)))
    return found


def _literal(token: _Token) -> str:
    if not token.text.startswith('"'):
        raise ShapeChanged(f"{ARG}: expected a plain string literal, found {token.text[:40]!r}")
    return bytes(token.text[1:-1], "utf-8").decode("unicode_escape")


def _closing(tokens: list[_Token], start: int) -> int:
    """The index of the bracket that closes the one at `start`."""
    pairs = {"(": ")", "{": "}", "[": "]"}
    opening, depth = tokens[start].text, 0
    for index in range(start, len(tokens)):
        if tokens[index].kind != "punct":
            continue
        if tokens[index].text == opening:
            depth += 1
        elif tokens[index].text == pairs[opening]:
            depth -= 1
            if depth == 0:
                return index
    raise ShapeChanged(f"{ARG}: a {opening} never closes")


def _names(tokens: list[_Token]) -> list[str]:
    return [t.text for t in tokens if t.kind == "name" and t.text.startswith("LLAMA_EXAMPLE_")]


@dataclass
class _Option:
    spellings: list[str]
    negatives: list[str]
    env: str | None
    examples: list[str]
    excludes: list[str]
    conditions: tuple[tuple[bool, str], ...]

    def for_server(self) -> bool:
        if any((wanted != (example == SERVER)) for wanted, example in self.conditions):
            return False
        return (SERVER in self.examples or COMMON in self.examples) and SERVER not in self.excludes


def _example_lists(tokens: list[_Token]) -> dict[str, list[str]]:
    """`static std::initializer_list<enum llama_example> mmproj_examples = {...};` and the like."""
    lists: dict[str, list[str]] = {}
    for index, token in enumerate(tokens[:-2]):
        if token.text == "initializer_list" and tokens[index + 2].text == "enum":
            name_at = index + 5
            if tokens[name_at + 1].text == "=" and tokens[name_at + 2].text == "{":
                lists[tokens[name_at].text] = _names(tokens[name_at + 2 : _closing(tokens, name_at + 2)])
    return lists


def _add_opts(tokens: list[_Token]) -> Iterator[_Option]:
    lists = _example_lists(tokens)
    # The blocks enclosing the current token: (True, X) inside `if (ex == X) {`, (False, X) in its else.
    blocks: list[tuple[bool, str] | None] = []
    last_closed: tuple[bool, str] | None = None
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token.text == "add_opt" and tokens[index + 1].text == "(" and tokens[index + 2].text == "common_arg":
            end = _closing(tokens, index + 1)
            conditions = tuple(block for block in blocks if block is not None)
            yield _read_option(tokens[index + 3 : end], lists, conditions)
            index = end + 1
            continue
        if token.text == "{":
            before = [t.text for t in tokens[max(0, index - 6) : index]]
            if len(before) == 6 and before[:3] == ["if", "(", "ex"] and before[3] == "==" and before[5] == ")":
                blocks.append((True, before[4]))
            elif before[-1:] == ["else"] and last_closed is not None and last_closed[0]:
                blocks.append((False, last_closed[1]))
            else:
                blocks.append(None)
        elif token.text == "}" and blocks:
            last_closed = blocks.pop()
        index += 1


def _read_option(
    tokens: list[_Token], lists: dict[str, list[str]], conditions: tuple[tuple[bool, str], ...]
) -> _Option:
    """One `common_arg(...)...` of an add_opt, from its opening parenthesis to before add_opt's closing one."""
    end = _closing(tokens, 0)
    inside = tokens[1:end]
    if inside[0].text != "{":
        raise ShapeChanged(f"{ARG}: a common_arg does not start with its spellings")
    spellings_end = _closing(inside, 0)
    spellings = [_literal(t) for t in inside[1:spellings_end] if t.kind == "string"]
    negatives: list[str] = []
    if inside[spellings_end + 1].text == "," and inside[spellings_end + 2].text == "{":
        negatives_end = _closing(inside, spellings_end + 2)
        negatives = [_literal(t) for t in inside[spellings_end + 3 : negatives_end] if t.kind == "string"]
    option = _Option(spellings, negatives, None, [COMMON], [], conditions)
    rest, at = tokens[end + 1 :], 0
    while at < len(rest) and rest[at].text == ".":
        method, open_at = rest[at + 1].text, at + 2
        close_at = _closing(rest, open_at)
        arguments = rest[open_at + 1 : close_at]
        if method == "set_env":
            option.env = _literal(arguments[0]) if arguments[0].kind == "string" else None
        elif method in {"set_examples", "set_excludes"}:
            named = _names(arguments) or lists.get(arguments[0].text, [])
            if not named:
                raise ShapeChanged(f"{ARG}: {method}({arguments[0].text}) names no example this reader can find")
            setattr(option, "examples" if method == "set_examples" else "excludes", named)
        at = close_at + 1
    return option


def server_options(source: str) -> list[RuntimeOption]:
    """Every option llama-server accepts, with the environment variables it reads them from."""
    options: dict[tuple[str, ...], RuntimeOption] = {}
    for option in _add_opts(_tokens(source)):
        if not option.for_server():
            continue
        env: tuple[str, ...] = ()
        if option.env:
            env = (option.env,)
            if option.negatives:
                env += (option.env.replace("LLAMA_ARG_", "LLAMA_ARG_NO_"),)
        spellings = (*option.spellings, *option.negatives)
        options[spellings] = RuntimeOption(spellings=spellings, env=env)
    if not options:
        raise ShapeChanged(f"{ARG} has no add_opt(common_arg(...)) for llama-server")
    return list(options.values())


def syntax(source: str) -> Syntax:
    if "std::replace(arg.begin(), arg.end(), '_', '-')" not in source:
        raise ShapeChanged(f"{ARG} common_params_parse_ex no longer rewrites --flag_name")
    return Syntax(
        long_underscores=True,
        equals_value=False,
        abbreviations=False,
        attached_short_values=False,
        evidence=(
            f"{ARG} common_params_parse_ex replaces '_' with '-' in each argument that starts with --, then looks "
            "the whole argument up (arg_to_options), so there is no --flag=value form, no attached value (-c4096) "
            "and no prefix match"
        ),
    )
