"""Dependencies point one way: contracts at the bottom, then components, the solver, the
assembly of a run, the runner and tools, and the command line on top; the built-in plugins sit
above the core, which never imports them.

Every ``import`` in ``engine/`` (inside functions and ``TYPE_CHECKING`` blocks too) is read
from the source and must name a module of the same layer or one below. The layers are the
README's "How it is built".
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Bottom to top; a module belongs to the most specific prefix listed.
LAYERS = {
    "contracts": (
        "engine",  # the package itself: its version
        "engine.hooks",
        "engine.registry",
        "engine.materials.base",
        "engine.materials.torch_base",
        "engine.scene.schema",
        "engine.scene.errors",
        "engine.scene.locate",
        "engine.scene.loaded",
    ),
    "components": (
        "engine.geometry",
        "engine.materials",
        "engine.output",
        "engine.io",
        "engine.progress",
        "engine.scene.checks",
        "engine.scene.explain",
        "engine.diff.linalg",
        "engine.diff.laws",
        "engine.diff.neural_law",
        "engine.diff.tensor_memory",
        "engine.diff.mover_net",
        "engine.diff.sidecar",
    ),
    "solver": ("engine.solver",),
    "assembly": (
        "engine.builtins",
        "engine.discovery",
        "engine.scene.loader",
        "engine.preflight",
        "engine.diff",
    ),
    "runner": (
        "engine.runner",
        "engine.output_meshes",
        "engine.sweep",
        "engine.bench",
        "engine.bench_scaling",
        "engine.viz",
        "engine.diff.experiments",
        "engine.diff.contact_training",
        "engine.diff.contact_experiment",
        "engine.diff.mover_data",
        "engine.diff.mover_training",
        "engine.diff.mover_experiment",
    ),
    "cli": ("engine.cli", "engine.console", "engine.extras"),
}
RANK = {prefix: rank for rank, prefixes in enumerate(LAYERS.values()) for prefix in prefixes}
NAMES = list(LAYERS)


def layer(module: str) -> int:
    """The rank of ``module``: that of the longest listed prefix it falls under."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in RANK:
            return RANK[prefix]
    raise KeyError(f"{module} is in no layer: add it to LAYERS and to the README")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every absolute import of the engine or the built-in plugins."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            # `from engine.solver import simulation` imports the module engine.solver.simulation
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    roots = ("engine", "engine_plugins", "plugins")
    return [(line, name) for line, name in found if name.split(".")[0] in roots]


def exists(module: str) -> bool:
    path = ROOT / Path(*module.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def upward_imports(modules: dict[str, Path]) -> list[str]:
    """What each of ``{module name: source file}`` imports against the layers."""
    problems = []
    for here, path in modules.items():
        for line, name in imported(path):
            where = f"{here} (line {line}) imports {name}"
            if name.split(".")[0] in ("engine_plugins", "plugins"):
                problems.append(f"{where}: the core never imports the built-in plugins")
            elif exists(name) and layer(name) > layer(here):
                problems.append(
                    f"{where}: {NAMES[layer(here)]} must not import {NAMES[layer(name)]}"
                )
    return problems


def engine_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted((ROOT / "engine").rglob("*.py"))}


def test_no_import_runs_upward():
    problems = upward_imports(engine_modules())
    assert not problems, "\n".join(problems)


def test_every_module_has_a_layer():
    for name in engine_modules():
        layer(name)


def test_the_check_catches_an_upward_import(tmp_path):
    """The checker itself: a solver module importing the runner, a core module importing a
    built-in plugin."""
    probe = tmp_path / "probe.py"
    probe.write_text("from engine.runner import run_scene\nimport engine_plugins.neural_law\n")
    problems = upward_imports({"engine.solver.probe": probe})
    assert len(problems) == 2
    assert "solver must not import runner" in problems[0]
    assert "never imports the built-in plugins" in problems[1]


@pytest.mark.parametrize("name", NAMES)
def test_the_readme_shows_each_layer(name):
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## How it is built") :]
    assert f"**{name}**" in section
