"""The contract of a batched torch material (a learned or prototyped constitutive law).

The solver hands over the whole batch of a material's particles at once, on the simulation's
device, as views of the same memory Taichi works on: no copies cross the Taichi/torch boundary.
"""

from __future__ import annotations

from engine.materials.base import ConstitutiveModel, MaterialParams


class TorchMaterial(ConstitutiveModel):
    """Base class of a torch material. One instance is made per scene material.

    Subclasses set :attr:`name` and :attr:`Params` and implement :meth:`kirchhoff` and
    :meth:`wave_speed`; they may override :meth:`project` (plasticity), :meth:`critical_dt` and
    :attr:`state_vars` (per-particle history the projection reads and updates, e.g. a hardening
    variable). Tensors have the simulation's dtype and device.
    """

    def __init__(self, params: MaterialParams, base_dir, device, dtype) -> None:
        """Build the law for one scene material (load weights relative to ``base_dir`` here)."""
        self.params = params

    def project(self, F_trial, state):
        """Plastic projection: ``(F_elastic (N, d, d), new state (N, S))`` from the trial
        deformation gradient ``(N, d, d)`` and the particles' state ``(N, S)``, one column per
        entry of :attr:`state_vars` (``S`` may be 0). Projecting its own output again must
        change nothing (the solver may call it twice in a step). The identity by default."""
        return F_trial, state

    def kirchhoff(self, F):
        """Kirchhoff stress ``(N, d, d)``, Pa, of the elastic deformation gradient ``F``."""
        raise NotImplementedError
