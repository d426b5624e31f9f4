"""Pydantic's validation errors told as scene issues: the key path as written in the file, a
message that says which other shape, material model or collider type a stray key belongs to,
and a fix (a close spelling, the values allowed, the bound to respect)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

from engine.registry import Registry
from engine.scene.checks import variant_issue
from engine.scene.errors import SceneIssue
from engine.scene.locate import KeyPath


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
    for member in get_args(union):
        is_model = isinstance(member, type) and issubclass(member, BaseModel)
        if is_model and tag in member.model_fields:
            for value in get_args(member.model_fields[tag].annotation):
                out[value] = member
    return out


def _walk(model: type[BaseModel], loc: tuple) -> tuple[set[int], _Table]:
    """Follow a pydantic error location through the model: the positions in ``loc`` that are
    union tags (``("bodies", 0, "mesh", "min")``: the "mesh" after 0 names the variant, not the
    body's ``mesh`` key), and the table holding the last key."""
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
    return tags, table


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


def _names(names: list[str]) -> str:
    """``a``, ``a or b``, ``a, b or c``."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


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


def _fix_for(error: dict, known: set[str], table: _Table | None = None, path: KeyPath = ()) -> str:
    kind, ctx = error["type"], error.get("ctx", {})
    key = str(error["loc"][-1]) if error["loc"] else ""
    if kind == "missing":
        return f"add `{key} = ...` to this table"
    if kind == "extra_forbidden":
        return _spelling_fix(key, table or _Table(None), known, path)
    if kind in ("union_tag_invalid", "literal_error"):
        expected = ctx.get("expected_tags") or ctx.get("expected")
        return f"use one of: {expected}"
    if kind == "union_tag_not_found":
        return f"add `{ctx.get('discriminator', 'model')} = ...`".replace("'", "")
    for bound, word in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
        if bound in ctx:
            return f"use a value {word} {ctx[bound]}"
    if kind.endswith("_type") or kind.endswith("_parsing"):
        return "write a value of the expected type (see `engine schema`)"
    return "see `engine schema` for what this key accepts"


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
    merged: dict[KeyPath, SceneIssue] = {}
    unusable: dict[KeyPath, SceneIssue] = {}  # entry -> why its variant cannot be used at all
    for item in error.errors():
        tags, table = _walk(model, item["loc"])
        path = _data_path(data, item["loc"], tags)
        if table.tag is not None:
            entry = _data_path(data, item["loc"][: table.start], tags)
            if entry not in unusable and (reason := context.usable(table, table.chosen)):
                unusable[entry] = SceneIssue((*entry, *reason.path), reason.message, reason.fix)
        if item["type"] in ("union_tag_invalid", "union_tag_not_found"):
            path = (*path, item["ctx"]["discriminator"].strip("'"))  # point at `model =`
        issue = None
        if item["type"] == "extra_forbidden" and table.tag is not None:
            issue = _extra_key_issue(path, str(item["loc"][-1]), table, context)
        issue = issue or SceneIssue(path, item["msg"], _fix_for(item, context.known, table, path))
        if path in merged:  # alternatives of a union: one issue per key, each message once
            previous = merged[path]
            if issue.message not in previous.message.split(", or "):
                merged[path] = SceneIssue(
                    path, f"{previous.message}, or {issue.message}", previous.fix
                )
        else:
            merged[path] = issue
    # a shape or collider type that cannot be used in this dimension is the root cause: its
    # entry's other problems (keys of the shapes the user meant instead) would only mislead
    issues = [
        issue
        for issue in merged.values()
        if not any(issue.path[: len(entry)] == entry for entry in unusable)
    ]
    return [*unusable.values(), *issues]
