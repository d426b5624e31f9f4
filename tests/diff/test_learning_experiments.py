"""`engine experiment materials`: the acceptance pipeline runs end to end at a tiny scale (the
README's numbers come from the full scale, which takes about an hour on 2 cores)."""

import json
import math

import pytest

from engine.cli import main
from engine.diff.experiments import CASES, doubled_modulus


def test_the_wrong_modulus_baseline_doubles_only_the_modulus():
    jelly = doubled_modulus(CASES["jelly"])
    assert "youngs_modulus = 200000.0" in jelly and "density = 1000.0" in jelly
    assert "bulk_modulus = 200000.0" in doubled_modulus(CASES["water"])


@pytest.mark.slow
def test_quick_jelly_experiment_reports_every_contender(tmp_path, capsys):
    out = tmp_path / "experiments"
    assert (
        main(["experiment", "materials", "--case", "jelly", "--quick", "-q", "--out", str(out)])
        == 0
    )
    report = json.loads((out / "jelly" / "report.json").read_text())
    assert set(report["errors"]) == {"invariant", "mlp", "wrong_modulus"}
    for contender in ("invariant", "wrong_modulus"):
        for rollout in ("training_2x", "unseen"):
            assert math.isfinite(report["errors"][contender][rollout])
            assert 0 < report["errors"][contender][rollout] < 1
    assert set(report["training_minutes"]) == {"invariant", "mlp"}
    sidecar = json.loads((out / "jelly" / "invariant.json").read_text())
    assert sidecar["observed_material"]["model"] == "fixed_corotated"
    identified = report["identified"]
    assert identified["parameter"] == "youngs_modulus" and identified["start"] == 5.0e4
    assert identified["error"] <= 0.05, identified  # the target, from half the truth
    output = capsys.readouterr().out
    assert "| jelly | unseen |" in output and "| jelly | youngs_modulus | 1e+05 |" in output
    weights = out / "jelly" / "invariant.pt"
    trained_at = weights.stat().st_mtime_ns
    assert (
        main(["experiment", "materials", "--case", "jelly", "--quick", "-q", "--out", str(out)])
        == 0
    )
    assert weights.stat().st_mtime_ns == trained_at  # the second run reused the trained law


def test_fewer_than_one_epoch_is_refused_before_any_work(tmp_path, capsys):
    out = str(tmp_path / "experiments")
    with pytest.raises(SystemExit) as stop:
        main(["experiment", "materials", "--epochs", "0", "--out", out])
    assert stop.value.code == 2
    assert "argument --epochs: '0' is not a whole number of at least 1; e.g. --epochs 30" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "experiments").exists()


def test_each_stage_of_a_case_shows_as_it_starts(tmp_path, capsys, monkeypatch):
    """The stages' order and count, with the work itself stubbed out."""
    from engine.diff import experiments

    monkeypatch.setattr(experiments, "run", lambda folder, tag, text, quiet: folder / tag)
    monkeypatch.setattr(experiments, "trained_minutes", lambda weights, config, observed: None)
    monkeypatch.setattr(experiments, "train_constitutive", lambda *args, **kwargs: [1.0])
    monkeypatch.setattr(experiments, "identify_modulus", lambda case, observed, quiet: {})
    monkeypatch.setattr(experiments, "relative_error", lambda result, truth: 0.01)
    experiments.run_case("jelly", tmp_path, experiments.Scale(), quiet=False)
    log = capsys.readouterr().err.splitlines()
    assert log[0].startswith("experiment jelly: 0/12 stages, running observed, ")
    assert log[3].startswith("experiment jelly: 3/12 stages, training invariant, ")
    assert log[5].startswith("experiment jelly: 5/12 stages, identifying youngs_modulus, ")
    assert log[-2].startswith("experiment jelly: 11/12 stages, running mlp_unseen, ")
    assert log[-1].startswith("experiment jelly: 12/12 stages, done, ")
    experiments.run_case("jelly", tmp_path, experiments.Scale(), quiet=True)
    assert capsys.readouterr().err == ""
