"""The README's torch contact model runs as written: its scene loads the plugin, the block slows
against the one below much faster than with the built-in frictionless contact, and the total
momentum is kept (the two bodies' corrections are equal and opposite)."""

import numpy as np
from readme_blocks import write_documented_files

import engine.io
from engine.cli import main


def sliding(result) -> tuple[float, float]:
    """The top block's speed over the bottom one (m/s) and the total x momentum, last frame."""
    last = result.arrays(-1)
    v, body = last["velocity"][:, 0], last["body_id"]
    relative = v[body == 1].mean() - v[body == 0].mean()
    return float(relative), float((last["mass"] * v).sum())


def engine_run(scene, output) -> engine.io.Result:
    """``engine run SCENE`` (the command a user types), then its result."""
    fields = 'output.fields=["velocity", "body_id", "mass"]'
    arguments = ["run", str(scene), "--quiet", "--set", fields, "--set", f'output.path="{output}"']
    assert main(arguments) == 0
    return engine.io.open(output)


def test_documented_torch_contact_model_runs_and_damps_sliding(tmp_path):
    files = write_documented_files(tmp_path)
    scene = files["contact-damper/blocks.toml"]
    damped = engine_run(scene, tmp_path / "d.vtkhdf")
    built_in_scene = scene.with_name("built_in.toml")
    text = scene.read_text().replace('contact = "sliding_damper"', "")
    built_in_scene.write_text(text.replace("[contact]\nrate = 200.0\n", ""))
    plain = engine_run(built_in_scene, tmp_path / "p.vtkhdf")
    damped_sliding, damped_momentum = sliding(damped)
    plain_sliding, plain_momentum = sliding(plain)
    first = damped.arrays(0)
    start = float((first["mass"] * first["velocity"][:, 0]).sum())
    assert plain_sliding > 0.5  # frictionless: the block keeps most of its 1 m/s
    assert damped_sliding < 0.5 * plain_sliding, (damped_sliding, plain_sliding)
    assert abs(damped_momentum - start) < 1e-4 * abs(start)
    assert np.isfinite(damped.points(-1)).all()
