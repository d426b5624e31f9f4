"""Finite differences of a potential on an output mesh's node lattice, the domain's faces acting
as mirrors (the potential reflected across them: ``phi[-1] = phi[1]``), so that the normal
derivative is zero on every face and a map ``x = xi + grad phi`` slides boundary nodes along
their faces and keeps the corners.

Central differences for the gradient, the compact three-node stencil for the Hessian's diagonal
and the four-corner stencil for its mixed terms (second order inside; at a face the diagonal
term is the mirrored stencil's). One implementation for NumPy arrays (the ``monge_ampere``
mover) and torch tensors (the learned mover and its training): ``phi`` ``(..., *nodes)``, the
lattice on its last ``d`` axes, any leading batch axes.
"""

from engine.output.lattice import array_namespace


def _part(array, axis: int, start: int, stop: int):
    """``array[..., start:stop, ...]`` along ``axis``."""
    return array[(slice(None),) * axis + (slice(start, stop),)]


def mirrored(phi, dim: int):
    """``phi`` ``(..., *nodes)`` padded by one node at both ends of each of its last ``dim``
    axes, mirrored across the end nodes: ``(..., *(nodes + 2))``."""
    xp = array_namespace(phi)
    for axis in range(phi.ndim - dim, phi.ndim):
        n = phi.shape[axis]
        ends = [_part(phi, axis, 1, 2), phi, _part(phi, axis, n - 2, n - 1)]
        phi = xp.concatenate(ends, axis=axis)
    return phi


def lattice_derivatives(phi, spacing) -> tuple[list, object]:
    """The gradient (``d`` arrays shaped like ``phi``) and the Hessian ``(..., *nodes, d, d)``
    of ``phi`` ``(..., *nodes)`` on a lattice of node ``spacing`` ``(d,)`` (lengths in the
    unit of ``phi``'s argument), mirrored across the faces."""
    xp = array_namespace(phi)
    h = [float(value) for value in spacing]
    dim = len(h)
    lead = phi.ndim - dim
    nodes = phi.shape[lead:]
    padded = mirrored(phi, dim)

    def shifted(offsets: dict[int, int]):
        """``phi`` at the nodes shifted by ``offsets`` (lattice axis: -1, 0 or 1)."""
        index = tuple(
            slice(1 + offsets.get(a, 0), n + 1 + offsets.get(a, 0)) for a, n in enumerate(nodes)
        )
        return padded[(slice(None),) * lead + index]

    gradient = [(shifted({a: 1}) - shifted({a: -1})) / (2 * h[a]) for a in range(dim)]
    rows = [[None] * dim for _ in range(dim)]
    for a in range(dim):
        rows[a][a] = (shifted({a: 1}) - 2 * phi + shifted({a: -1})) / h[a] ** 2
        for b in range(a + 1, dim):
            corners = shifted({a: 1, b: 1}) - shifted({a: 1, b: -1}) - shifted({a: -1, b: 1})
            rows[a][b] = rows[b][a] = (corners + shifted({a: -1, b: -1})) / (4 * h[a] * h[b])
    hessian = xp.stack([xp.stack(row, axis=-1) for row in rows], axis=-2)
    return gradient, hessian
