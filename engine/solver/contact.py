"""The built-in contact model (Coulomb friction at walls, planes, mesh colliders and between
bodies) and the non-penetration constraint re-applied after a torch contact model."""

import taichi as ti

from engine.hooks.records import ContactModel

#: Contact conditions, as stored in collider rows.
STICKY, SLIP, SEPARATE = 0, 1, 2


@ti.func
def contact_response(v, n, v_collider, condition, friction):
    """Grid velocity after contact with a wall moving at ``v_collider`` (m/s), normal ``n``."""
    relative = v - v_collider
    normal_speed = relative.dot(n)
    if condition == STICKY:
        relative = ti.zero(relative)
    elif condition == SLIP or normal_speed < 0.0:
        tangential = relative - normal_speed * n
        if normal_speed < 0.0:  # Coulomb: friction removes up to mu |v_n| of the sliding speed
            norm = tangential.norm()
            if norm > 1e-12:
                tangential *= ti.max(0.0, norm + friction * normal_speed) / norm
        relative = tangential
    return relative + v_collider


@ti.func
def non_penetration(v, n, v_collider, condition, friction):
    """The hard constraint alone, whatever ``condition`` and ``friction``: the part of ``v``
    (m/s) that approaches the surface moving at ``v_collider`` along ``n`` is removed."""
    normal_speed = (v - v_collider).dot(n)
    if normal_speed < 0.0:
        v -= normal_speed * n
    return v


COULOMB = ContactModel(name="coulomb", respond=contact_response)
