"""Rotations of rigid bodies: a rotation vector to a matrix."""

from __future__ import annotations

import numpy as np


def rotation_matrix(rotation_vector: np.ndarray) -> np.ndarray:
    """Rotation ``(3, 3)`` by ``|r|`` radians about ``r / |r|`` (Rodrigues' formula)."""
    angle = float(np.linalg.norm(rotation_vector))
    if angle < 1e-15:
        return np.eye(3)
    k = rotation_vector / angle
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle) * K + (1 - np.cos(angle)) * K @ K
