"""System identification: fit material parameters to an observed trajectory through the twin."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from engine.diff.twin import TorchTwin


def fit_parameters(
    twin: TorchTwin,
    start: dict[str, torch.Tensor],
    observed: Sequence[torch.Tensor],
    dt: float,
    material: str,
    names: Sequence[str],
    iterations: int = 30,
) -> dict[str, float]:
    """Fit ``names`` of one material so that rolling out from ``start`` reproduces ``observed``.

    ``observed[k]`` are particle positions ``(N, d)`` (m) after ``k + 1`` steps of ``dt`` (s).
    Parameters are optimised in log space (they are positive) by L-BFGS on the mean squared
    position error, relative to the initial guess's; the twin keeps the fitted values, which
    are returned.
    """
    params = twin.params[material]
    logs = {name: params[name].detach().log().clone().requires_grad_() for name in names}
    optimiser = torch.optim.LBFGS(
        list(logs.values()),
        max_iter=iterations,
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-12,
        tolerance_change=1e-14,
    )

    def mismatch() -> torch.Tensor:
        for name, log in logs.items():
            params[name] = log.exp()
        state, loss = start, 0.0
        for target in observed:
            state = twin.step(state, dt)
            loss = loss + ((state["x"] - target) ** 2).mean()
        return loss / len(observed)

    with torch.no_grad():
        scale = float(mismatch())

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = mismatch() / scale
        loss.backward()
        return loss

    optimiser.step(closure)
    fitted = {name: float(log.detach().exp()) for name, log in logs.items()}
    for name, value in fitted.items():
        params[name] = torch.tensor(value, dtype=twin.dtype, device=twin.device)
    return fitted
