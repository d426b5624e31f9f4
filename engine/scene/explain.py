"""Pydantic's validation errors told as scene issues: the key path as written in the file, a
message that says what was expected and what was given (or which other shape, material model or
collider type a stray key belongs to), and a fix (a close spelling, the values allowed, the
TOML table to write, the bound to respect)."""

from __future__ import annotations

import difflib
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from engine.registry import Registry
from engine.scene.checks import choice_fix, variant_issue
from engine.scene.errors import SceneIssue, format_path
from engine.scene.locate import KeyPath

#: What a type error's key expected, by pydantic error type.
_EXPECTED = {
    "float_type": "a number",
    "float_parsing": "a number",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
}
#: Bounds of a number (pydantic's ``ctx`` keys): the sign for the fix, the words for the message.
_BOUNDS = {
    "gt": (">", "greater than"),
    "ge": (">=", "greater than or equal to"),
    "lt": ("<", "less than"),
    "le": ("<=", "less than or equal to"),
}
_TAG_ERRORS = ("union_tag_invalid", "union_tag_not_found")


def _known_keys(model: type[BaseModel], seen: set | None = None) -> set[str]:
    """Every field name in a model tree (for "did you mean" hints)."""
    seen = seen if seen is not None else set()
    names: set[str] = set()
    if model in seen:
        return names
    seen.add(model)
    for name, info in model.model_fields.items():
        names.add(name)
        for sub in _models_in(info.annotation):
            names |= _known_keys(sub, seen)
    return names


def _models_in(annotation) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in getattr(annotation, "__args__", ()) for m in _models_in(arg)]


def _is_union(annotation) -> bool:
    return get_origin(annotation) in (Union, types.UnionType)


def _bare(annotation):
    """``annotation`` without ``Annotated[...]`` and without ``| None``."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if _is_union(annotation):
        args = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(args) == 1:
            return _bare(args[0])
    return annotation


def _is_table(annotation) -> bool:
    """A model, or a union of models (a TOML table)."""
    annotation = _bare(annotation)
    if _is_union(annotation):
        return all(_is_table(arg) for arg in get_args(annotation))
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _choices(annotation) -> list:
    """The values a ``Literal`` allows, also inside a union (``float | Literal["auto"]``)."""
    annotation = _bare(annotation)
    if get_origin(annotation) is Literal:
        return list(get_args(annotation))
    if _is_union(annotation):
        return [choice for arg in get_args(annotation) for choice in _choices(arg)]
    return []


@dataclass(frozen=True)
class _Table:
    """The model of the table an error's last key is in; for a variant of a tagged union (a
    shape, material model or collider type) also the tag key, every variant by tag value, the
    chosen one and where the entry starts in the error location."""

    model: type[BaseModel] | None
    tag: str | None = None
    variants: dict[str, type[BaseModel]] = field(default_factory=dict)
    chosen: str | None = None
    start: int = 0


def _variants(union, tag: str) -> dict[str, type[BaseModel]]:
    """``{tag value: member}`` of a discriminated union (each member's tag is a Literal)."""
    out = {}
    for member in get_args(_bare(union)):
        is_model = isinstance(member, type) and issubclass(member, BaseModel)
        if is_model and tag in member.model_fields:
            for value in get_args(member.model_fields[tag].annotation):
                out[value] = member
    return out


def _walk(model: type[BaseModel], loc: tuple) -> tuple[set[int], _Table, Any]:
    """Follow a pydantic error location through the model: the positions in ``loc`` that are
    union tags (``("bodies", 0, "mesh", "min")``: the "mesh" after 0 names the variant, not the
    body's ``mesh`` key), the table holding the last key, and the annotation reached (the last
    key's, or where the walk stopped)."""
    tags: set[int] = set()
    table = _Table(model)
    annotation, pending = model, None
    for position, part in enumerate(loc):
        tag = pending
        while get_origin(annotation) is Annotated:
            annotation, *meta = get_args(annotation)
            tag = next((m.discriminator for m in meta if getattr(m, "discriminator", None)), tag)
        pending = None
        if isinstance(tag, str):
            variants = _variants(annotation, tag)
            if part not in variants:
                break
            tags.add(position)
            annotation = variants[part]
            table = _Table(annotation, tag, variants, part, position)
            continue
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if table.model is not annotation:
                table = _Table(annotation)
            info = annotation.model_fields.get(part) if isinstance(part, str) else None
            if info is None:
                break
            annotation, pending = info.annotation, info.discriminator
        elif get_origin(annotation) in (list, tuple) and isinstance(part, int):
            annotation = get_args(annotation)[0]
        elif get_origin(annotation) is dict:
            annotation = get_args(annotation)[1]
        else:
            break  # a plain union's alternatives ("float", "list[float]"): no keys below
    return tags, table, annotation


def _data_path(data: Any, loc: tuple, tags: set[int] = frozenset()) -> KeyPath:
    """Keep the parts of a pydantic error location that are real keys of the scene data."""
    path: list[str | int] = []
    node = data
    for position, part in enumerate(loc):
        if position in tags:
            continue  # a union tag, not a key (a mesh body's tag "mesh" is also one of its keys)
        inside_dict = isinstance(node, dict) and part in node
        inside_list = isinstance(node, list) and isinstance(part, int) and part < len(node)
        if inside_dict or inside_list:
            node = node[part]
            path.append(part)
        elif isinstance(node, dict) and position == len(loc) - 1:
            path.append(part)  # a missing key: name it
    return tuple(path)


def _names(names: list[str], last: str = "or") -> str:
    """``a``, ``a or b``, ``a, b or c`` (or ``a, b and c``)."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {last} {names[-1]}"


def _shown(value: Any) -> str:
    """A value as a scene file writes it (a table as "a table"), for "got ..." messages."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        if value and all(isinstance(item, dict) for item in value):
            return "a list of tables"
        return "[" + ", ".join(_shown(item) for item in value) + "]"
    return repr(value)


def _kind(table: _Table, names: list[str], path: KeyPath) -> str:
    """``shape sphere/cylinder``, ``model von_mises``, ``mesh colliders`` (for ``type``)."""
    if table.tag == "type":
        container = next((str(part) for part in path if isinstance(part, str)), "entries")
        return f"{'/'.join(names)} {container}"
    return f"{table.tag} {'/'.join(names)}"


@dataclass
class _Context:
    """What the messages of one validation error need besides the error."""

    known: set[str]
    usable: Any = None  # (table, tag value) -> SceneIssue | None: why a variant cannot be used


@dataclass(frozen=True)
class _Error:
    """One pydantic error, with the key path it is about in the file, the table holding that
    key and the annotation the error location reaches."""

    item: dict
    path: KeyPath
    table: _Table
    reached: Any


def _other_variants(table: _Table, key: str) -> list[str]:
    return [
        name
        for name, member in table.variants.items()
        if name != table.chosen and key in member.model_fields
    ]


def _extra_key_issue(
    path: KeyPath, key: str, table: _Table, context: _Context
) -> SceneIssue | None:
    """A key the chosen shape, model or collider type lacks but another variant has."""
    accepting = _other_variants(table, key)
    if not accepting:
        return None
    chosen = _kind(table, [table.chosen], path) if table.tag == "type" else table.chosen
    message = f"`{key}` is a key of {_kind(table, accepting, path)}, not {chosen}"
    reasons = {name: context.usable(table, name) for name in accepting}
    usable = [name for name in accepting if reasons[name] is None]
    if usable:
        fix = f"remove `{key}`, or change {table.tag} to {_names(usable)}"
    else:
        fix = f"remove `{key}` ({'; '.join(dict.fromkeys(r.message for r in reasons.values()))})"
    return SceneIssue(path, message, fix)


def _spelling_fix(key: str, table: _Table, known: set[str], path: KeyPath) -> str:
    """``did you mean ...?`` from the table's own keys, then other variants', then any key."""
    own = set(table.model.model_fields) if table.model else set()
    others = {k for m in table.variants.values() for k in m.model_fields} - own
    hint = ""
    for candidates in (own, others, set() if table.model else known):
        close = difflib.get_close_matches(key, candidates - {key}, n=1)
        if close:
            accepting = _other_variants(table, close[0]) if candidates is others else []
            where = f" (a key of {_kind(table, accepting, path)})" if accepting else ""
            hint = f"did you mean `{close[0]}`{where}? "
            break
    return f"{hint}remove `{key}` or correct its spelling"


def _unknown_key_issue(error: _Error, context: _Context) -> SceneIssue:
    """A key the table does not have: another variant's, or a misspelling."""
    key = str(error.item["loc"][-1])
    table = error.table
    other = _extra_key_issue(error.path, key, table, context) if table.tag else None
    return other or SceneIssue(
        error.path, "unknown key", _spelling_fix(key, table, context.known, error.path)
    )


def _table_form(path: KeyPath, annotation) -> tuple[str, bool] | None:
    """How TOML writes the value at ``path`` when it is made of tables: ``("[simulation]",
    False)``, ``("[[bodies]]", True)``, ``("[materials.<name>]", True)``; None for a plain value.
    """
    annotation = _bare(annotation)
    origin = get_origin(annotation)
    if _is_table(annotation) and path and isinstance(path[-1], int):
        return f"[[{format_path(path[:-1])}]]", False  # one entry of an array of tables
    if _is_table(annotation):
        return f"[{format_path(path)}]", False
    if origin is list and _is_table(get_args(annotation)[0]):
        return f"[[{format_path(path)}]]", True
    if origin is dict and _is_table(get_args(annotation)[1]):
        return f"[{format_path(path)}.<name>]", True
    return None


def _expected(error: _Error) -> str | None:
    """What a type error's key expected (``a number``, ``[[bodies]] tables``), else None."""
    kind = error.item["type"]
    if kind == "literal_error":  # one alternative of a union, as in dt: a number or "auto"
        return _names([_shown(choice) for choice in _choices(error.reached)])
    if kind not in _EXPECTED:
        return None
    form = _table_form(error.path, error.reached)
    if form:
        syntax, many = form
        return f"{syntax} tables" if many else f"a {syntax} table"
    reached = _bare(error.reached)
    if kind == "list_type" and get_origin(reached) is list:
        items = {float: "numbers", int: "integers", str: "strings"}.get(get_args(reached)[0])
        return f"a list of {items}" if items else "a list"
    return _EXPECTED[kind]


def _mismatch_issue(path: KeyPath, wanted: list[str], value: Any) -> SceneIssue:
    """``expected a number or 'auto', got 'fast'``."""
    what = _names(list(dict.fromkeys(wanted)))
    return SceneIssue(path, f"expected {what}, got {_shown(value)}", f"write {what}")


def _missing_issue(error: _Error) -> SceneIssue:
    """A required key or table that is not there: the line, or the TOML table, to add."""
    path = error.path
    form = _table_form(path, error.reached)
    if form and form[1]:
        fix = f"add one or more {form[0]} tables (`engine schema` lists their keys)"
    elif form:
        fields = getattr(_bare(error.reached), "model_fields", {})  # a union has no fields
        required = [name for name, info in fields.items() if info.is_required()]
        fix = f"add a {form[0]} table" + (f" with {_names(required, 'and')}" if required else "")
    else:
        info = error.table.model.model_fields.get(path[-1]) if error.table.model else None
        about = getattr(info, "description", None)
        fix = f"add `{path[-1]} = ...` to this table" + (f" ({about.rstrip('.')})" if about else "")
    return SceneIssue(path, f"required {'table' if form else 'key'} is missing", fix)


def _missing_tag_issue(error: _Error) -> SceneIssue:
    """No ``shape`` (``model``, ``type``) key: a close spelling among the entry's stray keys,
    else the values to choose from."""
    tag = error.path[-1]
    variants = _variants(error.reached, tag)
    entry = error.item["input"] if isinstance(error.item["input"], dict) else {}
    valid = {key for member in variants.values() for key in member.model_fields}
    strays = [key for key in entry if isinstance(key, str) and key not in valid]
    close = difflib.get_close_matches(tag, strays, n=1)
    options = ", ".join(variants)
    if close:
        fix = f"did you mean `{tag}` for `{close[0]}`? rename it `{tag}` (one of: {options})"
    else:
        fix = f"add `{tag} = ...` with one of: {options}"
    return SceneIssue(error.path, f"the `{tag}` key is missing", fix)


def _choice_issue(error: _Error) -> SceneIssue:
    """A value outside a fixed set (a ``Literal``, or the tag of a shape, model or type)."""
    key = str(error.path[-1])
    if error.item["type"] == "union_tag_invalid":
        entry = error.item["input"]
        value = entry.get(key) if isinstance(entry, dict) else error.item["ctx"]["tag"]
        options = list(_variants(error.reached, key))
    else:
        value, options = error.item["input"], _choices(error.reached)
    named = isinstance(value, str)
    message = f"unknown {key} {_shown(value)}" if named else f"{key} cannot be {_shown(value)}"
    return SceneIssue(error.path, message, choice_fix(value, options))


def _value_issue(error: _Error) -> SceneIssue:
    """A value of the right type that breaks a bound (``> 0``), or pydantic's own words."""
    item = error.item
    ctx = item.get("ctx", {})
    for bound, (sign, words) in _BOUNDS.items():
        if bound in ctx:
            limit = _shown(ctx[bound])
            message = f"must be {words} {limit}, got {_shown(item['input'])}"
            return SceneIssue(error.path, message, f"use a value {sign} {limit}")
    if item["type"] == "too_short":
        form = _table_form(error.path, error.reached)
        message = f"has {ctx['actual_length']} entries, at least {ctx['min_length']} needed"
        fix = f"add one or more {form[0]} tables" if form else "add entries"
        return SceneIssue(error.path, message, fix)
    return SceneIssue(error.path, item["msg"], "see `engine schema` for what this key accepts")


def _issue(error: _Error, context: _Context) -> SceneIssue:
    """The issue one pydantic error is about."""
    kind = error.item["type"]
    if kind == "extra_forbidden":
        return _unknown_key_issue(error, context)
    if kind == "missing":
        return _missing_issue(error)
    if kind == "union_tag_not_found":
        return _missing_tag_issue(error)
    if kind in ("union_tag_invalid", "literal_error"):
        return _choice_issue(error)
    if wanted := _expected(error):
        return _mismatch_issue(error.path, [wanted], error.item["input"])
    return _value_issue(error)


def _key_issue(errors: list[_Error], context: _Context) -> SceneIssue:
    """One issue per key: the alternatives of a union merged (``dt``: a number or "auto")."""
    wanted = [_expected(error) for error in errors]
    if len(errors) > 1 and all(wanted):
        return _mismatch_issue(errors[0].path, wanted, errors[0].item["input"])
    issues = [_issue(error, context) for error in errors]
    message = ", or ".join(dict.fromkeys(issue.message for issue in issues))
    return SceneIssue(issues[0].path, message, issues[0].fix)


def _usable_check(data: dict, registry: Registry | None, base_dir: Path):
    """``(table, tag value) -> SceneIssue | None``: why that shape or collider type cannot be
    used in the scene's dimension (``mesh bodies need dim = 3``), by its registered check."""
    simulation = data.get("simulation")
    dim = simulation.get("dim") if isinstance(simulation, dict) else None
    records: dict = {}
    if registry is not None:
        records = {rec.Params: (rec, False) for rec in registry.shapes.values()}
        records |= {rec.Params: (rec, True) for rec in registry.colliders.values()}

    def usable(table: _Table, name: str) -> SceneIssue | None:
        found = records.get(table.variants.get(name))
        if found is None or type(dim) is not int or dim not in (2, 3):
            return None
        record, collider = found
        return variant_issue(record, table.tag, dim, base_dir, collider)

    return usable


def schema_issues(
    error: ValidationError,
    data: dict,
    model: type[BaseModel],
    registry: Registry | None = None,
    base_dir: Path = Path(),
) -> list[SceneIssue]:
    context = _Context(_known_keys(model), _usable_check(data, registry, base_dir))
    by_key: dict[KeyPath, list[_Error]] = {}
    unusable: dict[KeyPath, SceneIssue] = {}  # entry -> why its variant cannot be used at all
    for item in error.errors():
        tags, table, reached = _walk(model, item["loc"])
        path = _data_path(data, item["loc"], tags)
        if table.tag is not None:
            entry = _data_path(data, item["loc"][: table.start], tags)
            if entry not in unusable and (reason := context.usable(table, table.chosen)):
                unusable[entry] = SceneIssue((*entry, *reason.path), reason.message, reason.fix)
        if item["type"] in _TAG_ERRORS:
            path = (*path, item["ctx"]["discriminator"].strip("'"))  # point at `model =`
        by_key.setdefault(path, []).append(_Error(item, path, table, reached))
    # a shape or collider type that cannot be used in this dimension is the root cause: its
    # entry's other problems (keys of the shapes the user meant instead) would only mislead
    issues = [
        _key_issue(errors, context)
        for path, errors in by_key.items()
        if not any(path[: len(entry)] == entry for entry in unusable)
    ]
    return [*unusable.values(), *issues]


def contact_issues(scene, registry: Registry, base_dir: Path) -> list[SceneIssue]:
    """Problems of the ``[contact]`` table: keys the chosen contact model (``simulation.contact``)
    does not take, keys it needs, or values its ``Params`` refuse, each at ``contact.<key>``."""
    record = registry.contact_models.get(scene.simulation.contact)
    table = scene.contact
    if record is None or (record.Params is None and not table):
        return []
    name = record.name
    if record.Params is None:
        takes = [n for n, r in registry.contact_models.items() if r.Params is not None]
        other = f", or choose a contact model that takes some: {_names(takes)}" if takes else ""
        return [
            SceneIssue(
                ("contact", key),
                f"contact model {name!r} takes no [contact] keys",
                f"remove `{key}`{other}",
            )
            for key in table
        ]
    try:
        context = {"base_dir": base_dir, "dim": scene.simulation.dim}
        record.Params.model_validate(table, context=context)
    except ValidationError as error:
        issues = schema_issues(error, table, record.Params, registry, base_dir)
        return [
            SceneIssue(
                ("contact", *issue.path),
                f"{issue.message} (contact model {name!r})",
                issue.fix,
            )
            for issue in issues
        ]
    return []
