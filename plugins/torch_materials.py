"""``torch_neo_hookean``: the neo-Hookean law written as a batched torch function.

It is the same law as the built-in Taichi ``neo_hookean`` (so the two can be compared step by
step and timed side by side, see ``engine bench --only torch``), and the smallest complete
example of a :class:`~engine.materials.torch_base.TorchMaterial`.
"""

from typing import Literal

from engine.hooks import hookimpl
from engine.materials.base import ElasticParams
from engine.materials.elastic import ElasticSolid
from engine.materials.torch_base import TorchMaterial


class TorchNeoHookeanParams(ElasticParams):
    model: Literal["torch_neo_hookean"] = "torch_neo_hookean"


class TorchNeoHookean(TorchMaterial):
    """``tau = mu (F F^T - I) + lambda ln(J) I`` (Pa) on ``(N, d, d)`` batches."""

    name = "torch_neo_hookean"
    Params = TorchNeoHookeanParams
    wave_speed = ElasticSolid.wave_speed

    def __init__(self, params, base_dir, device, dtype) -> None:
        super().__init__(params, base_dir, device, dtype)
        self.mu, self.lam = params.lame()

    def kirchhoff(self, F):
        import torch  # imported when used, so the plugin loads without torch installed

        eye = torch.eye(F.shape[-1], dtype=F.dtype, device=F.device)
        log_J = torch.log(torch.linalg.det(F).clamp_min(1e-6))
        return self.mu * (F @ F.transpose(1, 2) - eye) + self.lam * log_J[:, None, None] * eye


@hookimpl
def engine_register_materials():
    return [TorchNeoHookean]
