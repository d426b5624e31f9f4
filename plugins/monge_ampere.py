"""The ``monge_ampere`` output-mesh mover: the classical equidistributing mesh.

The mesh map is the gradient of a convex potential, ``x = xi + grad phi(xi)`` (optimal
transport), with ``phi`` solving the Monge-Ampere equation of equidistribution,

    m(xi + grad phi) det(I + H(phi)) = theta        (H: the Hessian, theta: a constant),

so that every cell holds the same share of the monitor ``m``. It is solved by the parabolic
relaxation of Browne, Budd, Piccolo and Cullen (J. Comput. Phys. 2014), as Firedrake's
Movement and M2N use it:

    (I - gamma Laplacian) d phi / d tau = (m det(I + H(phi)))^(1/d) - its mean over the nodes,

explicit in pseudo-time ``tau`` with step ``TAU``, each step one Poisson-like solve by a
discrete cosine transform (type I, on the nodes: ``scipy.fft.dctn``), which also imposes
``d phi / d n = 0`` on the domain's faces, so boundary nodes slide along their faces and the
corners stay put. Derivatives are central differences on the lattice, mirrored across the
faces (:func:`engine.output.lattice_derivatives.lattice_derivatives`). Lengths are scaled by
the domain's largest side, so ``gamma`` and ``TAU`` are dimensionless.

Convergence: the relative residual ``std(m det(I + H)) / mean(...)`` over the nodes is tracked;
the relaxation stops when it is below ``RESIDUAL``, or changes by less than ``TOLERANCE``
(relative) over ``WINDOW`` steps, or after ``MAX_STEPS``. From rest (phi = 0) on the tests'
ring and tanh-front monitors (33 x 33 nodes, alpha = 3) it settles in about 400 steps, 0.2 s;
each later frame starts from the last frame's ``phi`` (the mover's state, kept in
checkpoints), so a slowly changing monitor needs a few steps. A step of half the stability
limit tangled cells at sharp fronts; a tenth does not. A relaxation that leaves NaN or an
inverted cell starts the next frame from rest (the engine writes the uniform mesh for that
frame, with a warning).
"""

import numpy as np
from scipy.fft import dctn, idctn

from engine.hooks import hookimpl
from engine.hooks.records import Monitor, OutputMeshMoverType, OutputMeshSpec
from engine.output.lattice import mesh_problem
from engine.output.lattice_derivatives import lattice_derivatives

GAMMA = 0.1  # smoothing of the relaxation, in (domain size)^2
#: The pseudo-time step, as a share of the explicit scheme's stability limit for the largest
#: monitor value (2 d gamma / max(m)^(1/d): linearised, the relaxation diffuses phi at a rate
#: up to m^(1/d) / (d gamma) at the finest scales).
TAU = 0.1
MAX_STEPS = 1000
RESIDUAL = 1e-3  # settled: the relative residual below this
TOLERANCE = 1e-3  # ...or changing by less than this (relative) over WINDOW steps
WINDOW = 10


class MongeAmpereMover:
    """Relaxes ``phi`` on the mesh's lattice each output frame and returns ``xi + grad phi``.

    ``residuals`` holds the last frame's residual at each relaxation step (their count is the
    steps it took).
    """

    def __init__(self, spec: OutputMeshSpec) -> None:
        self.nodes = spec.nodes
        self.domain = np.asarray(spec.domain, float)
        self.scale = float(self.domain.max())
        self.xi = spec.xi.reshape(*self.nodes, spec.dim) / self.scale
        self.spacing = self.domain / self.scale / (np.asarray(self.nodes) - 1)
        self.phi = np.zeros(self.nodes)
        self.residuals: list[float] = []
        eigenvalues = [
            (2 - 2 * np.cos(np.pi * np.arange(n) / (n - 1))) / h**2
            for n, h in zip(self.nodes, self.spacing, strict=True)
        ]
        laplacian = sum(np.meshgrid(*eigenvalues, indexing="ij"))
        self.inverse = 1.0 / (1.0 + GAMMA * laplacian)  # of I - gamma Laplacian, in DCT space

    def _map(self, gradient: list[np.ndarray]) -> np.ndarray:
        """Node positions ``(*nodes, d)`` m of ``xi + grad phi``, kept inside the domain."""
        moved = self.xi + np.stack(gradient, axis=-1)
        return np.clip(moved * self.scale, 0.0, self.domain)

    def relax(self, monitor: Monitor) -> np.ndarray:
        """Relax ``phi`` towards equidistribution of ``monitor``; the nodes ``(M, d)`` m."""
        dim = len(self.nodes)
        self.residuals = []
        step = TAU * 2 * dim * GAMMA / float(monitor.values.max()) ** (1.0 / dim)
        for _ in range(MAX_STEPS):
            gradient, hessian = lattice_derivatives(self.phi, self.spacing)
            x = self._map(gradient)
            density = monitor.at(x.reshape(-1, dim)).reshape(self.nodes) * np.linalg.det(
                np.eye(dim) + hessian
            )
            self.residuals.append(float(density.std() / abs(density.mean())))
            if not np.isfinite(self.residuals[-1]) or self.residuals[-1] < RESIDUAL:
                break
            source = np.maximum(density, 0.0) ** (1.0 / dim)
            source -= source.mean()
            change = idctn(dctn(source, type=1) * self.inverse, type=1)
            self.phi = self.phi + step * change
            if len(self.residuals) > WINDOW:
                before = self.residuals[-1 - WINDOW]
                if abs(before - self.residuals[-1]) <= TOLERANCE * before:
                    break
        gradient, _ = lattice_derivatives(self.phi, self.spacing)
        return self._map(gradient).reshape(-1, dim)

    def move(self, monitor: Monitor) -> np.ndarray:
        points = self.relax(monitor)
        if mesh_problem(points, self.nodes, self.domain) is not None:
            self.phi = np.zeros(self.nodes)  # the engine writes the uniform mesh this frame
        return points

    def state(self) -> dict[str, np.ndarray]:
        return {"phi": self.phi}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        self.phi = np.asarray(state["phi"], float).reshape(self.nodes)


@hookimpl
def engine_register_mesh_movers():
    return [OutputMeshMoverType(name="monge_ampere", create=MongeAmpereMover)]
