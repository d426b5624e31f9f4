"""The contract of a batched torch material (a learned or prototyped constitutive law).

The solver hands over the whole batch of a material's particles at once, on the simulation's
device, as views of the same memory Taichi works on: no copies cross the Taichi/torch boundary.
"""

from __future__ import annotations

from engine.materials.base import ConstitutiveModel, MaterialParams


class TorchMaterial(ConstitutiveModel):
    """Base class of a torch material. One instance is made per scene material.

    Subclasses set :attr:`name` and :attr:`Params` and implement :meth:`kirchhoff` and
    :meth:`wave_speed`; they may override :meth:`project` (plasticity) and :meth:`critical_dt`.
    Tensors have shapes ``(N, d, d)``, the simulation's dtype and device.
    """

    def __init__(self, params: MaterialParams, base_dir, device, dtype) -> None:
        """Build the law for one scene material (load weights relative to ``base_dir`` here)."""
        self.params = params

    def project(self, F_trial):
        """Plastic projection ``F_trial (N, d, d) -> F_elastic (N, d, d)``; identity by default."""
        return F_trial

    def kirchhoff(self, F):
        """Kirchhoff stress ``(N, d, d)``, Pa, of the elastic deformation gradient ``F``."""
        raise NotImplementedError
