"""``neural``: a constitutive law learned in torch, with its physics built in (after NCLaw,
Ma et al. 2023).

Elastic part: a network of rotation-invariant measures of the right stretch ``U`` (``F = R U``,
polar decomposition) gives three coefficients of a symmetric stress ``S = a0 I + a1 E + a2 E^2``
with ``E = U - I``; the rotation turns it into ``P = R S`` and the Kirchhoff stress
``tau = P F^T``. So ``tau`` is rotation-equivariant (``F -> Q F`` gives ``tau -> Q tau Q^T``) and,
the network having no biases, exactly zero at rest. Plastic part: a second such network returns
a correction ``F <- F + R (b0 E + b1 E^2)``, zero-initialised so that an untrained law is
purely elastic. Weights load with ``torch.load(..., weights_only=True)``; a JSON sidecar beside
them records what the law was trained on and its wave speed (for the CFL step).
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

    def __init__(self, params, base_dir, device, dtype) -> None:
        super().__init__(params, base_dir, device, dtype)
        path = Path(params.weights)  # made absolute by validation
        self.record = json.loads(path.with_suffix(".json").read_text())
        import torch

        from plugins.neural_law_model import NeuralLaw  # torch is imported when a law is used

        self.law = NeuralLaw().to(dtype)
        self.law.load_state_dict(torch.load(path, weights_only=True, map_location=device))
        self.law.to(device)

    @classmethod
    def wave_speed(cls, params) -> float:
        """The wave speed recorded in the sidecar at training time, m/s."""
        return float(
            json.loads(Path(params.weights).with_suffix(".json").read_text())["wave_speed"]
        )

    def kirchhoff(self, F):
        return self.law.kirchhoff(F)

    def project(self, F_trial):
        return self.law.project(F_trial)


@hookimpl
def engine_register_materials():
    return [NeuralMaterial]
