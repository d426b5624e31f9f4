"""Differentiable simulation: a torch twin of the MLS-MPM step, for gradients and training."""
