"""``neural``: a constitutive law learned in torch, with its physics built in (after NCLaw,
Ma et al. 2023).

The law's architecture is named in the JSON sidecar beside the weights
(:mod:`engine.diff.neural_law`): ``invariant``, where a network of rotation invariants of the
stretch gives a stress that is zero at rest and rotation-equivariant by construction, and a
return map in principal Hencky strain is the plastic part; or ``mlp``, the unconstrained
baseline. Weights load with ``torch.load(..., weights_only=True)``; the sidecar also records what
the law was trained on and its wave speed (for the CFL step).
"""

import json
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from engine.hooks import hookimpl
from engine.materials.base import MaterialParams
from engine.materials.torch_base import TorchMaterial


class NeuralParams(MaterialParams):
    model: Literal["neural"] = "neural"
    weights: str = Field(description="Trained weights (.pt), relative to the scene.")

    @field_validator("weights")
    @classmethod
    def weights_exist(cls, value: str, info: ValidationInfo) -> str:
        """Resolve against the scene's folder; the weights and their sidecar must exist."""
        path = Path((info.context or {}).get("base_dir", ".")) / value
        for needed in (path, path.with_suffix(".json")):
            if not needed.is_file():
                raise ValueError(f"{needed} does not exist (train a law or fix the path)")
        return str(path.resolve())


class NeuralMaterial(TorchMaterial):
    """A scene material backed by a :class:`NeuralLaw` loaded from ``weights``."""

    name = "neural"
    Params = NeuralParams
    state_vars = (("volume_correction", 0.0),)  # engine.diff.neural_law.STATE_VARS

    def __init__(self, params, base_dir, device, dtype) -> None:
        super().__init__(params, base_dir, device, dtype)
        path = Path(params.weights)  # made absolute by validation
        self.record = json.loads(path.with_suffix(".json").read_text())
        from engine.diff.neural_law import load_neural_law  # imports torch: only when used

        self.law = load_neural_law(path, device, dtype)

    @classmethod
    def wave_speed(cls, params) -> float:
        """The wave speed recorded in the sidecar at training time, m/s."""
        return float(
            json.loads(Path(params.weights).with_suffix(".json").read_text())["wave_speed"]
        )

    def kirchhoff(self, F):
        return self.law.kirchhoff(F)

    def project(self, F_trial, state):
        return self.law.project(F_trial, state)


@hookimpl
def engine_register_materials():
    return [NeuralMaterial]
