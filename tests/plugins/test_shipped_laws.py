"""The shipped learned laws (assets/models) reproduce the analytic materials they were learned
from, on the unseen disk of their example scenes. Reference: the same scene with the analytic
material (numbers from `engine experiment materials`, README "Learning materials from motion");
tolerance: the issue's targets, 1 % (jelly) and 3 % (plasticine, sand) of the body's size, over the
first 0.4 s here to keep the test short."""

from pathlib import Path

import pytest

from engine.cli import main
from engine.diff.experiments import relative_error

ROOT = Path(__file__).resolve().parents[2]
ANALYTIC = {
    "jelly": 'model = "fixed_corotated"\ndensity = 1000.0\nyoungs_modulus = 1.0e5\n'
    "poisson_ratio = 0.3",
    "plasticine": 'model = "von_mises"\ndensity = 1000.0\nyoungs_modulus = 1.0e5\n'
    "poisson_ratio = 0.3\nyield_stress = 5.0e3",
    "sand": 'model = "sand"\ndensity = 1600.0\nyoungs_modulus = 1.0e5\npoisson_ratio = 0.3\n'
    "friction_angle = 30.0",
}
TARGET = {"jelly": 0.01, "plasticine": 0.03, "sand": 0.03}


def run(text: str, folder: Path, name: str) -> Path:
    scene = folder / f"{name}.toml"
    scene.write_text(text)
    output = folder / f"{name}.vtkhdf"
    overrides = ["simulation.end_time=0.4", "simulation.resolution=32", f'output.path="{output}"']
    assert main(["run", str(scene), "-q", *[f"--set={o}" for o in overrides]]) == 0
    return output


@pytest.mark.slow
@pytest.mark.parametrize("material", list(TARGET))
def test_shipped_law_matches_the_analytic_material(material, tmp_path):
    text = (ROOT / "scenes" / f"learned_{material}_2d.toml").read_text()
    text = text.replace("../assets/models/", f"{ROOT}/assets/models/")
    block = text[text.index('model = "neural"') : text.index("\n\n[[bodies]]")]
    learned = run(text, tmp_path, "learned")
    analytic = run(text.replace(block, ANALYTIC[material]), tmp_path, "analytic")
    assert relative_error(learned, analytic) <= TARGET[material]
