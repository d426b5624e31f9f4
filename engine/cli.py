"""The ``engine`` command: run, validate, schema, plugins, bench, view, render, info."""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Callable

from engine import __version__, interrupts
from engine.extras import MissingExtra, require
from engine.hooks.calls import PluginError
from engine.scene.errors import SceneError
from engine.viz import VizError


def _run(args: argparse.Namespace) -> int:
    with interrupts.deferred():  # Ctrl-C while importing or loading stops cleanly below
        from engine.hooks.calls import disable_tracing, enable_tracing
        from engine.runner import output_path, refuse_to_overwrite, resume_advice, run_scene
        from engine.scene.loader import load_scene
        from engine.solver.simulation import SimulationError

        interrupts.check()
        if args.trace_hooks:
            enable_tracing()
        try:
            loaded = load_scene(
                args.scene, args.set or (), args.plugin or (), getattr(args, "text", None)
            )
            _require_torch_materials(loaded)
            if not (args.resume or getattr(args, "overwrite", False)):
                refuse_to_overwrite(loaded)
            interrupts.check()
            try:
                summary = run_scene(
                    loaded, args.quiet, args.resume, assume_yes=getattr(args, "yes", False)
                )
            except (SimulationError, PluginError) as error:
                print(f"error: {error}", file=sys.stderr)
                print(
                    f"frames written so far stay readable in {output_path(loaded)}", file=sys.stderr
                )
                return 1
            except KeyboardInterrupt:
                print(f"interrupted; {resume_advice(output_path(loaded))}", file=sys.stderr)
                return 130
        finally:
            disable_tracing()
    if not args.quiet:
        print(summary)
    return 0


def _require_torch_materials(loaded) -> None:
    """A scene with a torch material (``neural``, ``torch_neo_hookean``) runs only with torch."""
    from engine.materials.torch_base import TorchMaterial

    for name, params in loaded.scene.materials.items():
        if issubclass(loaded.registry.materials[params.model], TorchMaterial):
            require("torch", f"{loaded.path}: material {name!r} (model {params.model})")


def _resume(args: argparse.Namespace) -> int:
    """``engine resume out.vtkhdf``: the scene and plugins come from the result file."""
    import engine.io

    try:
        result = engine.io.open(args.result)
    except (OSError, KeyError) as error:
        print(f"error: cannot read {args.result} as an engine result ({error})", file=sys.stderr)
        return 2
    args.scene = result.metadata["scene_file"]
    args.plugin = json.loads(result.metadata.get("plugins", "[]"))
    args.set, args.resume = [], True
    args.text = result.scene_text
    return _run(args)


def _validate(args: argparse.Namespace) -> int:
    from engine.scene.loader import load_scene

    scene = load_scene(args.scene, args.set or (), args.plugin or ()).scene
    print(
        f"{args.scene}: valid ({scene.simulation.dim}D, {len(scene.materials)} materials, "
        f"{len(scene.bodies)} bodies, {len(scene.colliders)} colliders)"
    )
    return 0


def _registry(args: argparse.Namespace):
    from engine.discovery import make_plugin_manager
    from engine.registry import Registry

    return Registry.collect(make_plugin_manager(args.plugin or ()))


def _schema(args: argparse.Namespace) -> int:
    from engine.scene.schema import scene_model

    print(json.dumps(scene_model(_registry(args)).model_json_schema(), indent=2))
    return 0


def _plugins(args: argparse.Namespace) -> int:
    from engine.discovery import plugin_version

    registry = _registry(args)
    manager = registry.manager
    for name, _ in sorted(manager.list_name_plugin()):
        provided = registry.provided_by(name)
        print(f"{name} {plugin_version(manager, name)}")
        hooks = sorted(caller.name for caller in manager.get_hookcallers(manager.get_plugin(name)))
        for kind, names in provided.items():
            print(f"    {kind.replace('_', ' ')}: {', '.join(names)}")
        other = [h for h in hooks if not h.startswith("engine_register_")]
        if other:
            print(f"    hooks: {', '.join(other)}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from engine.bench import BenchError, run_benchmarks

    if args.scaling:
        from engine.bench_scaling import run_scaling

        run_scaling()
        return 0

    torch_cases = {"torch_law", "contact", "contact_gnn"}
    if args.only is None or torch_cases & set(args.only):
        require("torch", "engine bench (its torch cases; leave them out with --only)")
    try:
        run_benchmarks(steps=args.steps, grid=args.grid, which=args.only)
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def _view(args: argparse.Namespace) -> int:
    require("view", "engine view")
    from engine.viz.view import view

    view(
        args.result,
        field=args.field,
        camera=args.camera,
        cmap=args.cmap,
        color_range=args.range,
        point_size=args.point_size,
        spheres=args.spheres,
        fps=args.fps,
    )
    return 0


def _render(args: argparse.Namespace) -> int:
    require("view", "engine render")
    from engine.viz.render import render
    from engine.viz.results import parse_frames

    written = render(
        args.result,
        args.output,
        field=args.field,
        frames=parse_frames(args.frames) if args.frames is not None else None,
        camera=args.camera,
        cmap=args.cmap,
        clim=tuple(args.clim) if args.clim else None,
        color_range=args.range,
        point_size=args.point_size,
        spheres=args.spheres,
        window_size=tuple(args.size),
        fps=args.fps,
        quiet=args.quiet,
    )
    if not args.quiet:
        shown = written[0] if len(written) == 1 else f"{written[0]} ... {written[-1].name}"
        print(f"wrote {shown}" + (f" ({len(written)} files)" if len(written) > 1 else ""))
    return 0


def _sweep(args: argparse.Namespace) -> int:
    require("sweep", "engine sweep")
    from engine.sweep.execute import run_sweep
    from engine.sweep.spec import load_sweep

    sweep = load_sweep(args.sweep)
    try:
        manifest = run_sweep(sweep, workers=args.workers, address=args.address, quiet=args.quiet)
    except KeyboardInterrupt:
        print(
            f"interrupted; the runs it stopped are marked in {sweep.manifest_path}: "
            f"run `engine sweep {args.sweep}` again to resume them",
            file=sys.stderr,
        )
        return 130
    counts = manifest.counts()
    if not args.quiet:
        print(
            f"{counts['done']} done, {counts['failed']} failed of {len(sweep.runs)} runs; "
            f"manifest: {manifest.path}"
        )
    return 0 if counts["failed"] == 0 else 1


def _sweep_bench(args: argparse.Namespace) -> int:
    require("sweep", "engine sweep-bench")
    from engine.sweep.bench import run_sweep_benchmark

    run_sweep_benchmark(runs=args.runs, workers=args.workers)
    return 0


def _checked(
    convert: Callable[[str], float], valid: Callable[[float], bool], wanted: str, example: str
) -> Callable[[str], float]:
    """An argparse ``type``: ``convert(text)`` if that is ``valid``, else an error naming what
    is ``wanted`` and an ``example`` of the option, so that nothing runs on a bad value."""

    def parse(text: str) -> float:
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not valid(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not {wanted}; e.g. {example}")
        return value

    return parse


def _whole_number(minimum: int, example: str) -> Callable[[str], int]:
    """An argparse ``type``: a whole number of at least ``minimum``."""
    wanted = f"a whole number of at least {minimum}"
    return _checked(int, lambda value: value >= minimum, wanted, example)


def _positive_number(example: str) -> Callable[[str], float]:
    """An argparse ``type``: a finite number above zero."""
    return _checked(float, lambda value: 0 < value < float("inf"), "a positive number", example)


def _train(args: argparse.Namespace) -> int:
    require("torch", "engine train")
    from engine.diff.train import TrainingConfig, TrainingError, train_constitutive

    config = TrainingConfig(
        architecture=args.architecture,
        stress_scale=args.stress_scale,
        epochs=args.epochs,
        max_window=args.window,
        learning_rate=args.lr,
        device=args.device,
    )
    try:
        losses = train_constitutive(
            args.result, args.out, args.material, config, resume=args.resume, quiet=args.quiet
        )
    except (TrainingError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(f"trained {len(losses)} epochs, loss {losses[0]:.3e} -> {losses[-1]:.3e}: {args.out}")
    return 0


def _train_contact(args: argparse.Namespace) -> int:
    require("torch", "engine train")
    from dataclasses import fields
    from pathlib import Path

    from engine.diff.contact_training import ContactTrainingConfig, train_contact
    from engine.diff.train import TrainingError
    from engine.diff.twin import TwinError
    from engine.scene.errors import SceneError

    settings = {f.name: getattr(args, f.name) for f in fields(ContactTrainingConfig)}
    sweeps = [Path(folder) for folder in args.sweeps]
    try:
        log = train_contact(
            sweeps, Path(args.out), ContactTrainingConfig(**settings), args.resume, args.quiet
        )
    except (TrainingError, TwinError, SceneError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not args.quiet:
        kept = (
            f"kept epoch {log.losses.index(min(log.losses)) + 1}, validation loss "
            f"{min(log.losses):.3e}"
            if log.losses
            else "no epoch"
        )
        print(
            f"trained {len(log.losses)} epochs in {log.seconds / 60:.1f} min, {kept} "
            f"(built-in coarse {log.built_in:.3e}): {args.out}"
        )
    return 0


def _train_mover(args: argparse.Namespace) -> int:
    require("torch", "engine train")
    from dataclasses import fields
    from pathlib import Path

    from engine.diff.mover_training import MoverTrainingConfig, train_mover
    from engine.diff.train import TrainingError

    settings = {f.name: getattr(args, f.name) for f in fields(MoverTrainingConfig)}
    results = [Path(path) for path in args.results]
    try:
        log = train_mover(
            results, Path(args.out), MoverTrainingConfig(**settings), args.resume, args.quiet
        )
    except (TrainingError, SceneError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not args.quiet:
        last = f"{log.held_out[-1]:.3e}" if log.held_out else "none"
        print(
            f"trained {len(log.losses)} epochs in {log.seconds / 60:.1f} min, held-out loss "
            f"{last} (untrained {log.prior:.3e}): {args.out}"
        )
    return 0


def _identify(args: argparse.Namespace) -> int:
    require("torch", "engine identify")
    import json
    from dataclasses import asdict
    from pathlib import Path

    from engine.diff.identify import identify
    from engine.diff.train import TrainingError
    from engine.diff.twin import TwinError

    starts: dict[str, float | None] = {}
    for item in args.fit:
        name, _, value = item.partition("=")
        try:
            starts[name] = float(value) if value else None
        except ValueError:
            print(
                f"error: --fit {item}: the start must be a number, e.g. {name}=1.0e4",
                file=sys.stderr,
            )
            return 2
    try:
        found = identify(args.result, starts, args.material, args.iterations, args.device)
    except (TrainingError, TwinError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for name, value in found.fitted.items():
        print(f"{found.material}.{name}: {found.start[name]:.6g} -> {value:.6g}")
    print(f"loss {found.loss_before:.3e} -> {found.loss_after:.3e} ({found.seconds:.1f} s)")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(asdict(found), indent=1))
        print(f"wrote {args.out}")
    return 0


def _experiment(args: argparse.Namespace) -> int:
    require("torch", "engine experiment")
    from pathlib import Path

    from engine.diff.experiments import CASES, Scale, load_reports, run_case, summary_table

    scale = Scale(epochs=args.epochs) if args.epochs else Scale()
    if args.quick:
        scale = Scale(  # 4 frame intervals: windows of at most 4 frames
            resolution=16, frame_dt=0.025, train_time=0.1, epochs=args.epochs or 2, max_window=4
        )
    out = Path(args.out)
    if args.what == "contact":
        return _experiment_contact(args, out)
    if args.what == "mover":
        return _experiment_mover(args, out)
    for name in args.case or list(CASES):
        run_case(name, out / name, scale, quiet=args.quiet)
    print(summary_table(load_reports(out)))
    return 0


def _experiment_contact(args: argparse.Namespace, out) -> int:
    from pathlib import Path

    from engine.diff import contact_experiment as experiment

    models = Path(__file__).resolve().parents[1] / "assets" / "models"
    shipped = f"contact_{args.dim}d"
    weights = Path(args.weights or models / f"{shipped}.pt")
    ablation = Path(args.ablation or models / f"{shipped}_no_contact_edges.pt")
    for name in args.scene or []:
        dim = experiment.SCENES[name].dim
        if dim != args.dim:
            message = f"--scene {name} is not a {args.dim}D scene: add --dim {dim}"
            print(f"error: {message}", file=sys.stderr)
            return 2
    for path in (weights, ablation):
        if not path.is_file():
            print(f"error: {path} does not exist: train it (engine train contact)", file=sys.stderr)
            return 2
    folder = out / ("contact" if args.dim == 2 else f"contact_{args.dim}d")
    reports = experiment.run_experiment(
        weights.resolve(), ablation.resolve(), folder, args.quiet, args.scene, args.dim
    )
    print(experiment.summary_table(reports))
    for name, value in experiment.targets(reports).items():
        print(f"{name}: {value:.3f}")
    return 0


def _info(args: argparse.Namespace) -> int:
    if args.plot:  # plain info needs no extra; the plot draws with matplotlib
        require("view", "engine info --plot", modules=("matplotlib",))
    from engine.viz.info import describe, plot_diagnostics
    from engine.viz.results import open_result

    result = open_result(args.result)
    plot = plot_diagnostics(result, args.plot) if args.plot else None
    print(describe(result))
    if plot:
        print(f"wrote {plot}")
    return 0


def _look_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``engine view`` and ``engine render``."""
    parser.add_argument("result", help="particle result file (.vtkhdf) written by engine run")
    parser.add_argument(
        "--field",
        default="speed",
        help="colour by: speed, or a stored field (stress: von Mises; vectors: magnitude; "
        "tensors: Frobenius norm); default speed",
    )
    parser.add_argument(
        "--camera",
        help="iso, xy, xz, yz or 'x,y,z;fx,fy,fz;ux,uy,uz' (default: xy in 2D, iso in 3D)",
    )
    parser.add_argument(
        "--cmap", help="matplotlib colour map (default viridis; tab10 for material_id, body_id)"
    )
    parser.add_argument(
        "--range",
        choices=["robust", "global", "frame"],
        default="robust",
        help="colour range: robust (2nd to 98th percentile over all frames, the default), "
        "global (smallest to largest over all frames) or frame (each frame's own)",
    )
    parser.add_argument(
        "--point-size", type=float, default=5.0, help="particle size in pixels (default 5)"
    )
    parser.add_argument(
        "--spheres", action="store_true", help="draw particles as sphere glyphs (slower)"
    )
    parser.add_argument("--fps", type=float, default=24.0, help="playback frames per second")


def _plugin_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--plugin",
        action="append",
        metavar="MODULE_OR_FILE",
        help="load a plugin (module name or .py file; loading runs its code); repeatable",
    )


def _experiment_mover(args: argparse.Namespace, out) -> int:
    from pathlib import Path

    from engine.diff import mover_experiment as experiment

    models = Path(__file__).resolve().parents[1] / "assets" / "models"
    weights = Path(args.weights or models / "mover_2d.pt")
    if not weights.is_file():
        print(f"error: {weights} does not exist: train it (engine train mover)", file=sys.stderr)
        return 2
    settings = json.loads(weights.with_suffix(".json").read_text()).get("settings", {})
    nodes = int(settings.get("nodes", 33))
    alpha = args.alpha if args.alpha is not None else float(settings.get("alpha", 1.0))
    reports = experiment.run_experiment(weights.resolve(), out / "mover", nodes, alpha, args.quiet)
    print(experiment.summary_table(reports))
    for group, row in experiment.summary(reports).items():
        for name, value in experiment.targets(row).items():
            print(f"{group}: {name}: {value:.3f}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="engine", description="MLS-MPM simulation engine.")
    parser.add_argument("--version", action="version", version=f"engine {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="simulate a scene and write its result file")
    run.add_argument("scene", help="scene file (.toml)")
    run.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a scene key, value read as TOML (repeatable), e.g. simulation.end_time=0.5",
    )
    run.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors")
    run.add_argument("--trace-hooks", action="store_true", help="print every plugin hook call")
    run.add_argument(
        "--resume", action="store_true", help="continue from the output's last checkpoint"
    )
    run.add_argument("--overwrite", action="store_true", help="replace an existing result file")
    run.add_argument(
        "--yes", action="store_true", help="start even if the whole output may not fit the disk"
    )
    _plugin_option(run)
    run.set_defaults(handler=_run)

    resume = commands.add_parser("resume", help="continue a run from its result file")
    resume.add_argument("result", help="the result file (.vtkhdf) of the interrupted run")
    resume.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors")
    resume.add_argument("--trace-hooks", action="store_true", help="print every plugin hook call")
    resume.set_defaults(handler=_resume)

    validate = commands.add_parser("validate", help="check a scene without running it")
    validate.add_argument("scene")
    validate.add_argument("--set", action="append", metavar="KEY=VALUE")
    _plugin_option(validate)
    validate.set_defaults(handler=_validate)

    schema = commands.add_parser("schema", help="print the scene JSON Schema (for editors)")
    _plugin_option(schema)
    schema.set_defaults(handler=_schema)

    plugins = commands.add_parser("plugins", help="list plugins, versions and what they provide")
    _plugin_option(plugins)
    plugins.set_defaults(handler=_plugins)

    bench = commands.add_parser("bench", help="measure particle-steps per second vs a reference")
    bench.add_argument(
        "--steps", type=_whole_number(1, "--steps 100"), default=100, help="timed steps per case"
    )
    bench.add_argument(
        "--grid", type=_whole_number(4, "--grid 64"), default=64, help="grid cells per side"
    )
    bench.add_argument(
        "--only",
        action="append",
        choices=[
            "reference",
            "fluid",
            "elastic",
            "taichi_law",
            "torch_law",
            "contact",
            "contact_gnn",
        ],
    )
    bench.add_argument(
        "--scaling",
        action="store_true",
        help="instead: cost per particle-step, 1e4-1e6 particles, domains 1-4x, 1 and 2 threads",
    )
    bench.set_defaults(handler=_bench)

    experiment = commands.add_parser(
        "experiment",
        help="the acceptance experiments: learning materials from motion, contact correction, "
        "the learned mesh mover",
    )
    experiment.add_argument("what", choices=["materials", "contact", "mover"])
    experiment.add_argument(
        "--case", action="append", choices=["jelly", "plasticine", "sand", "water"]
    )
    experiment.add_argument(
        "--scene",
        action="append",
        choices=["drop", "throw", "slide", "ramp", "ramp_rough", "drop_fast"]
        + ["drop_3d", "throw_3d", "ramp_3d", "drop_fast_3d"],
        help="contact: a held-out scene (default: all of --dim)",
    )
    experiment.add_argument(
        "--dim",
        type=int,
        choices=[2, 3],
        default=2,
        help="contact: the held-out scenes and shipped networks of 2D or 3D",
    )
    experiment.add_argument(
        "--weights", help="contact, mover: the network (default: the shipped one)"
    )
    experiment.add_argument(
        "--ablation", help="contact: the network without contact edges (default: shipped)"
    )
    experiment.add_argument(
        "--alpha",
        type=_positive_number("--alpha 3"),
        help="mover: the monitor strength (default: the one the weights were trained at)",
    )
    experiment.add_argument("--out", default="out/experiments", help="folder for all outputs")
    experiment.add_argument(
        "--epochs", type=_whole_number(1, "--epochs 30"), help="training epochs (default 30)"
    )
    experiment.add_argument(
        "--quick", action="store_true", help="tiny scale, to check the pipeline"
    )
    experiment.add_argument("--quiet", "-q", action="store_true")
    experiment.set_defaults(handler=_experiment)

    train = commands.add_parser("train", help="train a learned component")
    train_kinds = train.add_subparsers(dest="kind", required=True)
    constitutive = train_kinds.add_parser(
        "constitutive", help="fit a neural material to one observed trajectory (a result file)"
    )
    constitutive.add_argument("result", help="result file with velocity, C and F stored")
    constitutive.add_argument("--out", required=True, help="weights file to write (.pt)")
    constitutive.add_argument("--material", help="the scene material to learn (default: first)")
    constitutive.add_argument("--epochs", type=_whole_number(1, "--epochs 20"), default=20)
    constitutive.add_argument(
        "--window", type=_whole_number(1, "--window 4"), default=4, help="longest window, frames"
    )
    constitutive.add_argument(
        "--lr", type=_positive_number("--lr 1e-3"), default=1e-3, help="Adam learning rate"
    )
    constitutive.add_argument(
        "--stress-scale",
        type=_positive_number("--stress-scale 1e4"),
        default=1.0e4,
        help="Pa: the untrained law's Young's modulus and the network's stress unit",
    )
    constitutive.add_argument(
        "--architecture",
        choices=["invariant", "mlp"],
        default="invariant",
        help="invariant (physics built in) or mlp (the unconstrained baseline)",
    )
    constitutive.add_argument(
        "--device", default="cpu", help="torch device to train on: cpu, or cuda for a GPU"
    )
    constitutive.add_argument("--resume", action="store_true", help="continue from the .ckpt")
    constitutive.add_argument("--quiet", "-q", action="store_true")
    constitutive.set_defaults(handler=_train)

    contact = train_kinds.add_parser(
        "contact",
        help="train the contact graph network on sweeps run at several resolutions",
    )
    contact.add_argument(
        "sweeps", nargs="+", help="output_dir of engine sweep runs that sweep the resolution"
    )
    contact.add_argument("--out", required=True, help="weights file to write (.pt)")
    contact.add_argument("--epochs", type=_whole_number(1, "--epochs 8"), default=8)
    contact.add_argument(
        "--minutes",
        type=_positive_number("--minutes 25"),
        default=30.0,
        help="wall-time budget: no epoch starts that would end past it (preparation included)",
    )
    contact.add_argument(
        "--window", type=_whole_number(1, "--window 2"), default=2, help="frames per window"
    )
    contact.add_argument(
        "--windows",
        type=_whole_number(1, "--windows 8"),
        default=8,
        help="windows per case and epoch",
    )
    contact.add_argument(
        "--teacher-epochs",
        dest="teacher_epochs",
        type=_whole_number(0, "--teacher-epochs 2"),
        default=2,
        help="epochs whose windows all start from the reference's states",
    )
    contact.add_argument(
        "--pushforward",
        type=_whole_number(0, "--pushforward 4"),
        default=0,
        help="then up to this many frames of the run's own before each window",
    )
    contact.add_argument(
        "--lr", dest="learning_rate", type=_positive_number("--lr 5e-4"), default=5e-4
    )
    contact.add_argument(
        "--bound",
        type=_positive_number("--bound 0.5"),
        default=0.5,
        help="corrections at most this times (|relative velocity| + g dt)",
    )
    contact.add_argument(
        "--absolute-loss",
        dest="relative",
        action="store_false",
        help="sum the windows' losses as they are, not each case's over the built-in contact's",
    )
    contact.add_argument(
        "--noise", type=float, default=0.02, help="input noise (normalised features)"
    )
    contact.add_argument("--hidden", type=_whole_number(4, "--hidden 32"), default=32)
    contact.add_argument("--layers", type=_whole_number(1, "--layers 2"), default=2)
    contact.add_argument(
        "--no-contact-edges",
        dest="contact_edges",
        action="store_false",
        help="the ablation: no edges between bodies",
    )
    contact.add_argument("--seed", type=int, default=0, help="of the initial weights")
    contact.add_argument(
        "--device", default="cpu", help="torch device to train on: cpu, or cuda for a GPU"
    )
    contact.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    contact.add_argument("--quiet", "-q", action="store_true")
    contact.set_defaults(handler=_train_contact)

    mover = train_kinds.add_parser(
        "mover",
        help="train the learned mesh mover on frames of engine runs (no optimal meshes needed)",
    )
    mover.add_argument("results", nargs="+", help="particle result files (.vtkhdf) of engine runs")
    mover.add_argument("--out", required=True, help="weights file to write (.pt)")
    mover.add_argument(
        "--epochs", type=_whole_number(1, "--epochs 2000"), default=2000, help="full-batch steps"
    )
    mover.add_argument(
        "--minutes",
        type=_positive_number("--minutes 25"),
        default=30.0,
        help="stop after the epoch that passes this wall time",
    )
    mover.add_argument(
        "--nodes", type=_whole_number(9, "--nodes 33"), default=33, help="mesh nodes per axis"
    )
    mover.add_argument(
        "--alpha", type=_positive_number("--alpha 1"), default=1.0, help="monitor strength"
    )
    mover.add_argument("--hidden", type=_whole_number(4, "--hidden 16"), default=16)
    mover.add_argument(
        "--steps",
        type=_whole_number(0, "--steps 12"),
        default=12,
        help="damped fixed-point steps of the unrolled Monge-Ampere solver after the first map",
    )
    mover.add_argument(
        "--lr", dest="learning_rate", type=_positive_number("--lr 5e-3"), default=5e-3
    )
    mover.add_argument(
        "--convexity",
        type=_positive_number("--convexity 3"),
        default=3.0,
        help="weight of the convexity penalty on I + Hessian(phi)",
    )
    mover.add_argument("--seed", type=int, default=0, help="of the initial weights")
    mover.add_argument(
        "--device", default="cpu", help="torch device to train on: cpu, or cuda for a GPU"
    )
    mover.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    mover.add_argument("--quiet", "-q", action="store_true")
    mover.set_defaults(handler=_train_mover)

    identify = commands.add_parser(
        "identify", help="fit a built-in material's parameters to a trajectory (a result file)"
    )
    identify.add_argument("result", help="result file of the observed motion")
    identify.add_argument(
        "--fit",
        action="append",
        required=True,
        metavar="NAME[=START]",
        help="a positive material parameter to fit, from START (default: the scene's value); "
        "repeatable",
    )
    identify.add_argument("--material", help="the scene material (default: first)")
    identify.add_argument(
        "--iterations",
        type=_whole_number(1, "--iterations 30"),
        default=30,
        help="L-BFGS iterations",
    )
    identify.add_argument("--device", default="cpu", help="torch device: cpu, or cuda")
    identify.add_argument("--out", help="write the start, fitted values and losses as JSON")
    identify.set_defaults(handler=_identify)

    sweep = commands.add_parser("sweep", help="run a parameter sweep on Ray")
    sweep.add_argument("sweep", help="sweep file (.toml): a base scene plus parameter axes")
    sweep.add_argument(
        "--workers", type=int, default=os.cpu_count(), help="local Ray workers (default: CPUs)"
    )
    sweep.add_argument("--address", help="an existing Ray cluster, e.g. auto or ray://host:10001")
    sweep.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary")
    sweep.set_defaults(handler=_sweep)

    sweep_bench = commands.add_parser(
        "sweep-bench", help="time N small runs on Ray workers against one after another"
    )
    sweep_bench.add_argument("--runs", type=int, default=8)
    sweep_bench.add_argument("--workers", type=int, default=2)
    sweep_bench.set_defaults(handler=_sweep_bench)

    view = commands.add_parser("view", help="open a window on a result (needs a display)")
    _look_options(view)
    view.set_defaults(handler=_view)

    render = commands.add_parser("render", help="draw a result off screen: .mp4, .gif or .png")
    _look_options(render)
    render.add_argument("-o", "--output", required=True, help="movie.mp4, movie.gif or image.png")
    render.add_argument(
        "--frames", help="one frame N (negative from the end) or a range A:B (png: one per frame)"
    )
    render.add_argument(
        "--clim", nargs=2, type=float, metavar=("LO", "HI"), help="fixed colour range"
    )
    render.add_argument(
        "--size", nargs=2, type=int, default=[1024, 768], metavar=("W", "H"), help="pixels"
    )
    render.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    render.set_defaults(handler=_render)

    info = commands.add_parser("info", help="frames, fields, particles, diagnostics and scene")
    info.add_argument("result", help="particle result file (.vtkhdf)")
    info.add_argument("--plot", metavar="PNG", help="also plot the diagnostics over time")
    info.set_defaults(handler=_info)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as the command's own lines: ``warning: ...`` on stderr, no source line."""
    print(f"warning: {message}", file=file or sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return args.handler(args)
    except SceneError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except PluginError as error:
        print(f"error: {error}", file=sys.stderr)
        return 3
    except VizError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except MissingExtra as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `engine info out.vtkhdf | head`: the reader has gone; no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
