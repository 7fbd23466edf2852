"""`vllm serve`'s options, read with `ast` from the wheel's source (vLLM itself needs torch to import).

How vLLM builds its parser (0.19 to 0.33):
- vllm/entrypoints/cli/serve.py ServeSubcommand.subparser_init calls make_arg_parser (entrypoints/openai or
  entrypoints/common cli_args.py), which adds a few options and calls FrontendArgs.add_cli_args and
  AsyncEngineArgs.add_cli_args (vllm/engine/arg_utils.py), which calls EngineArgs.add_cli_args.
- EngineArgs.add_cli_args names each option: `group.add_argument("--max-model-len", "-q"...,
  **model_kwargs["max_model_len"])`, the kwargs from `get_kwargs(ModelConfig)` (arg_utils._compute_kwargs).
- BaseFrontendArgs.add_cli_args turns every dataclass field into `--{field.replace('_', '-')}`.
- _compute_kwargs gives a field whose type includes bool `argparse.BooleanOptionalAction`, which also
  accepts `--no-<name>`.
- FlexibleArgumentParser.parse_args (vllm/utils/argparse_utils.py) rewrites `--flag_name` to `--flag-name`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field

from gemma_docgen.runtime_options.sources import SourceMissing
from gemma_operator.catalog.versions.options import RuntimeOption, Syntax

SERVE = "vllm/entrypoints/cli/serve.py"
ENGINE_ARGS = "vllm/engine/arg_utils.py"
PARSER = "vllm/utils/argparse_utils.py"
# The wheel's folders the generator reads: the parser, its config dataclasses, and the entrypoints.
READ = ["vllm/entrypoints", "vllm/engine", "vllm/config", "vllm/utils"]


class ShapeChanged(SourceMissing):
    """vLLM's parser no longer has the shape this reader knows; the message says where."""


@dataclass
class _Option:
    spellings: list[str]
    boolean: bool


@dataclass
class _Reader:
    texts: dict[str, str]
    trees: dict[str, ast.Module] = field(default_factory=dict)

    def tree(self, path: str) -> ast.Module:
        if path not in self.trees:
            if path not in self.texts:
                raise ShapeChanged(f"vLLM's parser imports from {path}, which the wheel does not hold")
            self.trees[path] = ast.parse(self.texts[path], filename=path)
        return self.trees[path]

    def module_path(self, dotted: str) -> str:
        base = dotted.replace(".", "/")
        for path in (f"{base}.py", f"{base}/__init__.py"):
            if path in self.texts:
                return path
        raise ShapeChanged(f"module {dotted} is not in the wheel's {READ}")

    def imported(self, path: str, node: ast.ImportFrom) -> str:
        if not node.level:
            return self.module_path(node.module or "")
        package = path.split("/")[: -node.level]
        return self.module_path(".".join([*package, *(node.module or "").split(".")]).strip("."))

    def resolve(self, path: str, name: str) -> tuple[str, ast.stmt]:
        """The top-level class, function or assignment `name` means in module `path`, following imports."""
        for node in self.tree(path).body:
            if isinstance(node, ast.ClassDef | ast.FunctionDef) and node.name == name:
                return path, node
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
                return path, node
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == name:
                return path, node
        for found in ast.walk(self.tree(path)):
            if isinstance(found, ast.ImportFrom) and any((a.asname or a.name) == name for a in found.names):
                original = next(a.name for a in found.names if (a.asname or a.name) == name)
                return self.resolve(self.imported(path, found), original)
        raise ShapeChanged(f"{path} uses {name}, defined nowhere this reader can follow")

    def resolve_class(self, path: str, name: str) -> tuple[str, ast.ClassDef]:
        where, node = self.resolve(path, name)
        if not isinstance(node, ast.ClassDef):
            raise ShapeChanged(f"{name} in {path} is not a class")
        return where, node

    def fields(self, path: str, cls: ast.ClassDef) -> dict[str, bool]:
        """A dataclass's fields (its bases' first, as dataclasses order them): whether each one's type has bool."""
        found: dict[str, bool] = {}
        for base in cls.bases:
            if isinstance(base, ast.Name) and base.id not in {"object", "Generic"}:
                found.update(self.fields(*self.resolve_class(path, base.id)))
        for node in cls.body:
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                if "ClassVar" in ast.unparse(node.annotation):
                    continue
                found[node.target.id] = self.has_bool(path, node.annotation)
        return found

    def has_bool(self, path: str, annotation: ast.expr, depth: int = 0) -> bool:
        for node in ast.walk(annotation):
            if isinstance(node, ast.Name) and node.id == "bool":
                return True
        # A type alias of the module (`RunnerOption = Literal[...]`): one level, as an alias of bool would be.
        if depth == 0 and isinstance(annotation, ast.Name):
            try:
                where, node = self.resolve(path, annotation.id)
            except ShapeChanged:
                return False
            value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
            return value is not None and self.has_bool(where, value, depth + 1)
        return False

    def method(self, path: str, cls: ast.ClassDef, name: str) -> tuple[str, ast.FunctionDef]:
        for node in cls.body:
            if isinstance(node, ast.FunctionDef) and node.name == name:
                return path, node
        for base in cls.bases:
            if isinstance(base, ast.Name):
                try:
                    return self.method(*self.resolve_class(path, base.id), name)
                except ShapeChanged:
                    continue
        raise ShapeChanged(f"class {cls.name} in {path} has no method {name}")


def _strings(nodes: list[ast.expr]) -> list[str]:
    return [n.value for n in nodes if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def _field_of(expr: ast.expr, aliases: dict[str, tuple[str, str]]) -> tuple[str, str] | None:
    """(kwargs variable, field) that a `**expr` of add_argument spreads: `x_kwargs["f"]`, `{**x_kwargs["f"], ...}`."""
    if isinstance(expr, ast.Subscript) and isinstance(expr.value, ast.Name) and isinstance(expr.slice, ast.Constant):
        return expr.value.id, str(expr.slice.value)
    if isinstance(expr, ast.Dict):
        for key, value in zip(expr.keys, expr.values, strict=True):
            if key is None:
                return _field_of(value, aliases)
    if isinstance(expr, ast.Name) and expr.id in aliases:
        return aliases[expr.id]
    return None


def _calls(function: ast.FunctionDef) -> Iterator[ast.Call]:
    for node in ast.walk(function):
        if isinstance(node, ast.Call):
            yield node


def _add_cli_args(reader: _Reader, path: str, cls: ast.ClassDef) -> list[_Option]:
    """The options `cls.add_cli_args(parser)` adds, following its calls to other classes' add_cli_args."""
    where, function = reader.method(path, cls, "add_cli_args")
    options: list[_Option] = []
    # `model_kwargs = get_kwargs(ModelConfig)`: the config class each kwargs variable comes from.
    configs: dict[str, dict[str, bool]] = {}
    # `moe_backend_kwargs = kernel_kwargs["moe_backend"]`: a variable that is one field's kwargs.
    aliases: dict[str, tuple[str, str]] = {}
    for node in ast.walk(function):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            target, value = node.targets[0].id, node.value
            if isinstance(value, ast.Call) and ast.unparse(value.func) == "get_kwargs" and value.args:
                argument = value.args[0]
                if isinstance(argument, ast.Name) and argument.id == "cls":
                    configs[target] = reader.fields(path, cls)
                elif isinstance(argument, ast.Name):
                    configs[target] = reader.fields(*reader.resolve_class(where, argument.id))
            elif (found := _field_of(value, aliases)) and found[0] in configs:
                aliases[target] = found
    for call in _calls(function):
        name = ast.unparse(call.func)
        if name.endswith(".add_cli_args") and isinstance(call.func, ast.Attribute):
            owner = call.func.value
            if isinstance(owner, ast.Name) and owner.id not in {"cls", "self", "super"}:
                options += _add_cli_args(reader, *reader.resolve_class(where, owner.id))
        if not name.endswith("add_argument"):
            continue
        keywords = {k.arg: k.value for k in call.keywords if k.arg}
        action = ast.unparse(keywords["action"]) if "action" in keywords else None
        spread = [_field_of(k.value, aliases) for k in call.keywords if k.arg is None]
        if any(isinstance(arg, ast.Starred) for arg in call.args):
            options += _frontend_fields(function, configs)
            continue
        boolean = action is not None and action.endswith("BooleanOptionalAction")
        for found in spread:
            if found and action is None and found[0] in configs:
                boolean = configs[found[0]].get(found[1], False)
        spellings = [s for s in _strings(call.args) if s.startswith("-")]
        if spellings:
            options.append(_Option(spellings, boolean))
    return options


def _frontend_fields(function: ast.FunctionDef, configs: dict[str, dict[str, bool]]) -> list[_Option]:
    """BaseFrontendArgs.add_cli_args: `add_argument(*extra_flags, f"--{key.replace('_', '-')}", **value)`."""
    source = ast.unparse(function)
    if "f\"--{key.replace('_', '-')}\"" not in source and "f'--{key.replace('_', '-')}'" not in source:
        raise ShapeChanged("BaseFrontendArgs.add_cli_args no longer names options --{field with dashes}")
    if "_customize_cli_kwargs" not in source:
        raise ShapeChanged("BaseFrontendArgs.add_cli_args no longer calls _customize_cli_kwargs")
    own = next(iter(configs.values()))
    return [_Option([f"--{name.replace('_', '-')}"], boolean) for name, boolean in own.items()]


def _action_overrides(reader: _Reader, path: str, cls: ast.ClassDef) -> set[str]:
    """Fields whose argparse action _customize_cli_kwargs replaces (`kwargs["middleware"]["action"] = "append"`)."""
    overridden: set[str] = set()
    classes = [cls]
    while classes:
        current = classes.pop()
        for node in ast.walk(current):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    text = ast.unparse(target)
                    if text.endswith("['action']") and isinstance(target, ast.Subscript):
                        inner = target.value
                        if isinstance(inner, ast.Subscript) and isinstance(inner.slice, ast.Constant):
                            overridden.add(str(inner.slice.value))
        for base in current.bases:
            if isinstance(base, ast.Name) and base.id != "object":
                classes.append(reader.resolve_class(path, base.id)[1])
    return overridden


def serve_options(texts: dict[str, str]) -> list[RuntimeOption]:
    """Every option `vllm serve` accepts: its spellings, with `--no-` forms of the boolean ones."""
    reader = _Reader(texts)
    _, serve = reader.resolve_class(SERVE, "ServeSubcommand")
    _, subparser_init = reader.method(SERVE, serve, "subparser_init")
    options: list[_Option] = []
    for call in _calls(subparser_init):
        name = ast.unparse(call.func)
        if name == "make_arg_parser":
            make_path, make = reader.resolve(SERVE, "make_arg_parser")
            if not isinstance(make, ast.FunctionDef):
                raise ShapeChanged("make_arg_parser is not a function")
            options += _make_arg_parser(reader, make_path, make)
        elif name.endswith("add_argument"):
            options += [_Option([s for s in _strings(call.args) if s.startswith("-")], False)]
    if not options:
        raise ShapeChanged(f"{SERVE} ServeSubcommand.subparser_init adds no options")
    return _merge(options)


def _make_arg_parser(reader: _Reader, path: str, function: ast.FunctionDef) -> list[_Option]:
    options: list[_Option] = []
    for call in _calls(function):
        name = ast.unparse(call.func)
        if name.endswith(".add_cli_args") and isinstance(call.func, ast.Attribute):
            owner = call.func.value
            if isinstance(owner, ast.Name):
                where, cls = reader.resolve_class(path, owner.id)
                found = _add_cli_args(reader, where, cls)
                replaced = _action_overrides(reader, where, cls)
                for option in found:
                    field_name = option.spellings[-1].removeprefix("--").replace("-", "_")
                    if field_name in replaced:
                        option.boolean = False
                options += found
        elif name.endswith("add_argument"):
            spellings = [s for s in _strings(call.args) if s.startswith("-")]
            keywords = {k.arg: ast.unparse(k.value) for k in call.keywords if k.arg}
            if spellings:
                options.append(_Option(spellings, keywords.get("action", "").endswith("BooleanOptionalAction")))
    return options


def _merge(options: list[_Option]) -> list[RuntimeOption]:
    """One entry per option; argparse's BooleanOptionalAction adds `--no-` to each `--` spelling."""
    merged: dict[tuple[str, ...], RuntimeOption] = {}
    for option in options:
        spellings = list(option.spellings)
        if option.boolean:
            spellings += [f"--no-{s.removeprefix('--')}" for s in option.spellings if s.startswith("--")]
        key = tuple(sorted(spellings))
        merged[key] = RuntimeOption(spellings=tuple(spellings))
    return sorted(merged.values(), key=lambda entry: entry.spellings[0].lstrip("-"))


def syntax(texts: dict[str, str]) -> Syntax:
    parser = texts[PARSER]
    if 'pattern = re.compile(r"(?<=--)[^\\.]*")' not in parser or 'replace("_", "-")' not in parser:
        raise ShapeChanged(f"{PARSER} FlexibleArgumentParser.parse_args no longer rewrites --flag_name")
    abbreviations = not any("allow_abbrev" in text for path, text in texts.items() if path.startswith("vllm/"))
    return Syntax(
        long_underscores=True,
        equals_value=True,
        abbreviations=abbreviations,
        attached_short_values=True,
        evidence=(
            f"{PARSER} FlexibleArgumentParser.parse_args rewrites the name of each --argument, up to its first '.', "
            "from underscores to dashes; argparse reads --flag=value and a one-letter option's attached value (-q8); "
            + (
                "no vllm source sets allow_abbrev, so argparse's default lets a unique prefix stand for a long option"
                if abbreviations
                else "vllm sets allow_abbrev"
            )
        ),
    )
