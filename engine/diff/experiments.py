"""The acceptance experiments of learning materials from motion (``engine experiment materials``).

For each case (jelly, plasticine, sand, water) the engine's own analytic material makes the
ground truth: a box thrown at the floor (the training trajectory) and a disk thrown the other
way (the unseen shape). A ``neural`` law (physics built in) and the unconstrained ``mlp`` baseline
are trained on the box's first ``train_time`` seconds, the same way; then ``engine run`` rolls
out, with each law in place of the material, (a) the box over twice the training horizon and
(b) the disk over the same time. The analytic law with a doubled modulus is the third
contender. System identification fits the ground truth's modulus to the training trajectory
from half its value (``engine identify``). The error of a roll-out is the mean over frames and
particles of the distance to the ground truth, divided by the body's size (its largest initial
extent).

Everything runs in 2D on a coarse grid (:class:`Scale`), so that a training takes minutes on a
2-core CPU; ``report.json`` in each case's folder keeps the numbers and the training times.
Re-running reuses weights already trained with the same settings (their sidecars say so).
"""

from __future__ import annotations

import itertools
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

import engine.io
from engine.diff.identify import identify
from engine.diff.train import TrainingConfig, train_constitutive
from engine.progress import Counter
from engine.runner import run_scene
from engine.scene.loader import load_scene


@dataclass(frozen=True)
class Case:
    """One material: its ground-truth law (TOML lines), the modulus key doubled for the
    wrong-modulus baseline and the error target (or None)."""

    law: str
    modulus_key: str
    target: float | None


CASES = {
    "jelly": Case(
        'model = "fixed_corotated"\ndensity = 1000.0\nyoungs_modulus = 1.0e5\npoisson_ratio = 0.3',
        "youngs_modulus",
        0.01,
    ),
    "plasticine": Case(
        'model = "von_mises"\ndensity = 1000.0\nyoungs_modulus = 1.0e5\npoisson_ratio = 0.3\n'
        "yield_stress = 5.0e3",
        "youngs_modulus",
        0.03,
    ),
    "sand": Case(
        'model = "sand"\ndensity = 1600.0\nyoungs_modulus = 1.0e5\npoisson_ratio = 0.3\n'
        "friction_angle = 30.0",
        "youngs_modulus",
        0.03,
    ),
    "water": Case(
        'model = "fluid"\ndensity = 1000.0\nbulk_modulus = 1.0e5\nviscosity = 0.0',
        "bulk_modulus",
        None,
    ),
}

SCENE = """\
[simulation]
dim = 2
domain = [1.0, 1.0]
resolution = {resolution}
end_time = {end_time}
frame_dt = {frame_dt}
boundary = "slip"
boundary_friction = 0.3

[output]
path = "{output}"
fields = ["velocity", "C", "F"]

[materials.body]
{law}

[[bodies]]
material = "body"
{shape}
velocity = {velocity}
particles_per_cell = 4
"""

BOX = 'shape = "box"\nmin = [0.3, 0.15]\nmax = [0.55, 0.4]'
DISK = 'shape = "sphere"\ncenter = [0.6, 0.3]\nradius = 0.14'
TRAINING_VELOCITY = [1.0, -2.0]
UNSEEN_VELOCITY = [-1.5, -1.0]
ARCHITECTURES = ("invariant", "mlp")


@dataclass
class Scale:
    """Resolution and schedule of the experiments (the defaults are the README's numbers)."""

    resolution: int = 32
    frame_dt: float = 0.02  # s
    train_time: float = 0.4  # s of the box's trajectory used for training
    epochs: int = 30
    max_window: int = 6
    learning_rate: float = 3e-4
    stress_scale: float = 3.0e4  # Pa: one guess for every case, 3.3x below the true moduli


@dataclass
class CaseReport:
    """The numbers of one case: errors per contender and roll-out, training minutes."""

    case: str
    errors: dict[str, dict[str, float]] = field(default_factory=dict)  # contender -> rollout -> e
    training_minutes: dict[str, float] = field(default_factory=dict)
    target: float | None = None
    identified: dict[str, float | str] = field(default_factory=dict)  # see identify_modulus


def doubled_modulus(case: Case) -> str:
    """The ground-truth law's TOML lines with ``case.modulus_key`` doubled."""
    lines = []
    for line in case.law.splitlines():
        key, _, value = line.partition(" = ")
        lines.append(f"{key} = {2 * float(value)}" if key == case.modulus_key else line)
    return "\n".join(lines)


def true_modulus(case: Case) -> float:
    """The ground truth's value of ``case.modulus_key``, Pa."""
    values = dict(line.partition(" = ")[::2] for line in case.law.splitlines())
    return float(values[case.modulus_key])


def identify_modulus(case: Case, observed: Path, quiet: bool = True) -> dict[str, float | str]:
    """System identification: the modulus fitted to the observed trajectory from half its true
    value (``engine identify``), with its relative error and the minutes it took."""
    truth = true_modulus(case)
    found = identify(observed, {case.modulus_key: truth / 2}, "body", quiet=quiet)
    fitted = found.fitted[case.modulus_key]
    return {
        "parameter": case.modulus_key,
        "truth": truth,
        "start": truth / 2,
        "fitted": fitted,
        "error": abs(fitted / truth - 1),
        "minutes": found.seconds / 60,
    }


def trained_minutes(weights: Path, config: TrainingConfig, observed: Path) -> float | None:
    """The training minutes its sidecar records if ``weights`` exist and were trained with
    ``config`` on a run of the same scene as ``observed`` (so a re-run of the experiments
    reuses them), else None."""
    sidecar = weights.with_suffix(".json")
    if not (weights.exists() and sidecar.exists()):
        return None
    record = json.loads(sidecar.read_text())
    keys = ("architecture", "epochs", "max_window", "learning_rate", "stress_scale")
    if any(record.get(key) != getattr(config, key) for key in keys):
        return None
    with engine.io.open(observed) as result:
        if record.get("scene_text") != result.scene_text:
            return None
    return record["training_seconds"] / 60


def neural_law(case: Case, weights: Path) -> str:
    density = next(line for line in case.law.splitlines() if line.startswith("density"))
    return f'model = "neural"\n{density}\nweights = "{weights.resolve()}"'


def run(folder: Path, name: str, text: str, quiet: bool = True) -> Path:
    """Run a scene (written to ``folder/name.toml``) and return its result file."""
    path = folder / f"{name}.toml"
    path.write_text(text)
    run_scene(load_scene(path), quiet=quiet)
    return folder / f"{name}.vtkhdf"


def relative_error(result: Path, truth: Path) -> float:
    """Mean over frames after the first and particles of |x - x_true| / body size."""
    with engine.io.open(result) as a, engine.io.open(truth) as b:
        if a.n_frames != b.n_frames:  # the roll-out stopped early: count it as lost
            return float("inf")
        start = b.points(0)
        size = float((start.max(axis=0) - start.min(axis=0)).max())
        distances = [
            np.linalg.norm(a.points(i) - b.points(i), axis=1).mean() for i in range(1, b.n_frames)
        ]
    return float(np.mean(distances)) / size


def run_case(name: str, folder: Path, scale: Scale, quiet: bool = True) -> CaseReport:
    """Ground truth, training of both architectures and the roll-outs of one case; unless
    ``quiet``, each stage shows on stderr as it starts, and the progress of its work."""
    case = CASES[name]
    folder.mkdir(parents=True, exist_ok=True)
    rollouts = {"training_2x": (BOX, TRAINING_VELOCITY), "unseen": (DISK, UNSEEN_VELOCITY)}
    horizon = 2 * scale.train_time
    # the observed run, the truths, the trainings, identification, every contender's roll-outs
    total = 1 + len(rollouts) + len(ARCHITECTURES) + 1 + (len(ARCHITECTURES) + 1) * len(rollouts)
    counter, finished = Counter(f"experiment {name}", total, "stages", quiet), itertools.count()

    def starting(stage: str) -> None:
        """Show that ``stage`` starts (the ones before it have finished)."""
        counter.update(next(finished), stage)

    def simulate(tag: str, law: str, rollout: str, end_time: float) -> Path:
        """Run ``law`` in the scene of ``rollout`` until ``end_time``, as ``tag``."""
        starting(f"running {tag}")
        shape, velocity = rollouts[rollout]
        text = SCENE.format(
            resolution=scale.resolution,
            end_time=end_time,
            frame_dt=scale.frame_dt,
            output=f"{tag}.vtkhdf",
            law=law,
            shape=shape,
            velocity=velocity,
        )
        return run(folder, tag, text, quiet)

    observed = simulate("observed", case.law, "training_2x", scale.train_time)
    truths = {r: simulate(f"truth_{r}", case.law, r, horizon) for r in rollouts}
    report = CaseReport(name, target=case.target)
    laws = {"wrong_modulus": doubled_modulus(case)}
    for architecture in ARCHITECTURES:
        config = TrainingConfig(
            architecture=architecture,
            stress_scale=scale.stress_scale,
            epochs=scale.epochs,
            max_window=scale.max_window,
            learning_rate=scale.learning_rate,
        )
        weights = folder / f"{architecture}.pt"
        minutes = trained_minutes(weights, config, observed)
        if minutes is None:
            starting(f"training {architecture}")
            started = time.perf_counter()
            train_constitutive(observed, weights, "body", config, quiet=quiet)
            minutes = (time.perf_counter() - started) / 60
        else:
            starting(f"reusing the {architecture} law trained before")
        report.training_minutes[architecture] = minutes
        laws[architecture] = neural_law(case, weights)
    starting(f"identifying {case.modulus_key}")
    report.identified = identify_modulus(case, observed, quiet)
    for contender, law in laws.items():
        report.errors[contender] = {}
        for rollout in rollouts:
            tag = f"{contender}_{rollout}"
            try:
                result = simulate(tag, law, rollout, horizon)
                error = relative_error(result, truths[rollout])
            except Exception as failure:  # a baseline that blows up loses, it does not stop us
                print(f"{name}: {tag} failed: {failure}")
                error = float("inf")
            report.errors[contender][rollout] = error
    counter.update(total, "done")
    counter.close()
    (folder / "report.json").write_text(json.dumps(asdict(report), indent=1))
    return report


def load_reports(folder: Path) -> list[CaseReport]:
    """The reports of the cases run so far under ``folder``, in :data:`CASES` order."""
    paths = [folder / name / "report.json" for name in CASES]
    return [CaseReport(**json.loads(path.read_text())) for path in paths if path.exists()]


CONTENDERS = ("invariant", "mlp", "wrong_modulus")


def summary_table(reports: list[CaseReport]) -> str:
    """A Markdown table of the reports (errors in % of the body's size)."""
    lines = [
        "| case | roll-out | neural | MLP | analytic, 2x modulus | target | training (min) |",
        "|---|---|---|---|---|---|---|",
    ]
    for report in reports:
        for rollout in ("training_2x", "unseen"):
            errors = [
                report.errors[c][rollout] * 100 for c in ("invariant", "mlp", "wrong_modulus")
            ]
            target = f"{report.target * 100:g} %" if report.target and rollout == "unseen" else ""
            minutes = "/".join(f"{m:.1f}" for m in report.training_minutes.values())
            lines.append(
                f"| {report.case} | {rollout} | "
                + " | ".join(f"{e:.2f} %" if math.isfinite(e) else "diverged" for e in errors)
                + f" | {target} | {minutes} |"
            )
    lines += [
        "",
        "| case | identified | truth (Pa) | start (Pa) | fitted (Pa) | error | minutes |",
        "|---|---|---|---|---|---|---|",
    ]
    for report in reports:
        if found := report.identified:
            lines.append(
                f"| {report.case} | {found['parameter']} | {found['truth']:.4g} | "
                f"{found['start']:.4g} | {found['fitted']:.6g} | {found['error'] * 100:.3f} % | "
                f"{found['minutes']:.1f} |"
            )
    return "\n".join(lines)
