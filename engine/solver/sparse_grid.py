"""The sparse grid: only the blocks of nodes that particles reach are stored and visited.

The grid's nodes are cut into blocks of :data:`~engine.solver.kernels.BLOCK` nodes a side (the
scatter order's blocks, :mod:`engine.solver.scatter_order`). Before every scatter the blocks
that the particles' stencils reach are listed: a particle whose stencil starts in block ``k``
reaches blocks ``k`` to ``k + 1`` on each axis. Each listed block takes a *pool block*: the
grid arrays (``grid_nodes``, the per-body fields, ...) hold ``capacity * BLOCK^d`` rows, pool
block ``s`` in rows ``s * BLOCK^d`` to ``(s + 1) * BLOCK^d - 1``, a block's nodes row major.

- ``slots`` ``(blocks of nodes,)`` int32: the pool block of each block of nodes, -1 where
  none (:func:`engine.solver.kernels.node_row` turns a node index into its row);
- ``region`` ``(capacity,)`` int32: the flat index of the block of nodes in each pool block
  (:func:`engine.solver.kernels.pool_node` turns a row into its node);
- ``sizes`` ``(2,)`` int32: the pool blocks in use, and those the last scatter wrote (the
  rows that :func:`~engine.solver.kernels.build_kernels`' ``clear_pool`` zeroes; every row
  past both is zero).

Memory then follows the particles: a body crossing a large domain costs the blocks around it,
plus one int32 per block of nodes (1/64 of a node's storage in 3D). On the CPU the blocks are
listed from the scatter order's counting sort, in one serial pass over its blocks, so pool
blocks are numbered in one fixed order and runs are reproducible; on GPUs every particle marks
its blocks in parallel and a parallel pass over the blocks of nodes numbers them with an
atomic counter. The pool grows when the particles reach more blocks than it holds (by a
quarter more than needed, the grid arrays allocated again); it never shrinks.
"""

import math
from functools import lru_cache
from types import SimpleNamespace

import numpy as np
import taichi as ti

from engine.solver.kernels import BLOCK, nd, particle_stencil
from engine.solver.launch import cached_launches
from engine.solver.runtime import on_restart

#: Unlisted blocks of nodes in ``slots``; -2 marks a block the particles reach that is not
#: in the pool yet (being listed, or past the capacity).
EMPTY, WANTED = -1, -2


@lru_cache(maxsize=4)
def build_sparse_kernels(dim: int) -> SimpleNamespace:
    """Compile-once kernels that list the blocks of nodes the particles reach, in ``dim``
    dimensions."""
    real = ti.f64 if ti.lang.impl.current_cfg().default_fp == ti.f64 else ti.f32
    vec = ti.types.vector(dim, real)
    ivec = ti.types.vector(dim, ti.i32)

    @ti.func
    def release(slots: ti.template(), region: ti.template(), sizes: ti.template()):
        """Unlist the pool's blocks (the listing before this one)."""
        for k in range(ti.min(sizes[0], region.shape[0])):
            slots[region[k]] = EMPTY

    @ti.kernel
    def list_sorted(
        start: nd(ti.i32),
        particle_blocks: ivec,
        blocks: ivec,
        slots: nd(ti.i32),
        region: nd(ti.i32),
        sizes: nd(ti.i32),
    ):
        """The CPU's listing, from the counting sort's ``start`` ``(particle blocks + 1,)``
        (see :class:`engine.solver.scatter_order.ScatterOrder`; ``particle_blocks`` per axis):
        each occupied block's blocks of nodes, in one serial pass, numbered as found.
        ``sizes[0]`` counts them all, also those past the pool's capacity (left ``WANTED``)."""
        release(slots, region, sizes)
        size = 0
        ti.loop_config(serialize=True)
        for block in range(start.shape[0] - 1):
            if start[block + 1] > start[block]:
                index = ti.Vector.zero(ti.i32, dim)
                rest = block
                for i in ti.static(range(dim)):
                    axis = ti.static(dim - 1 - i)
                    index[axis] = rest % particle_blocks[axis]
                    rest //= particle_blocks[axis]
                for offset in ti.static(ti.grouped(ti.ndrange(*([2] * dim)))):
                    flat = 0
                    for i in ti.static(range(dim)):
                        flat = flat * blocks[i] + index[i] + offset[i]
                    if slots[flat] == EMPTY:
                        slots[flat] = WANTED
                        if size < region.shape[0]:
                            slots[flat] = size
                            region[size] = flat
                        size += 1
        sizes[0] = size

    @ti.kernel
    def list_marked(
        x: nd(vec),
        dx: real,
        shape: ivec,
        blocks: ivec,
        slots: nd(ti.i32),
        region: nd(ti.i32),
        sizes: nd(ti.i32),
    ):
        """The GPUs' listing: every particle at ``x`` ``(N, d)`` (m) marks the blocks of nodes
        its stencil reaches (grid of ``shape`` nodes), then a parallel pass over the blocks of
        nodes numbers the marked ones (in no fixed order). ``sizes[0]`` as in ``list_sorted``."""
        release(slots, region, sizes)
        inv_dx, upper = 1.0 / dx, shape - 3
        for p in range(x.shape[0]):
            base, _ = particle_stencil(x[p], inv_dx, upper)
            for offset in ti.static(ti.grouped(ti.ndrange(*([2] * dim)))):
                flat = 0
                for i in ti.static(range(dim)):
                    flat = flat * blocks[i] + base[i] // BLOCK + offset[i]
                slots[flat] = WANTED
        sizes[0] = 0
        for flat in range(slots.shape[0]):
            if slots[flat] == WANTED:
                size = ti.atomic_add(sizes[0], 1)
                if size < region.shape[0]:
                    slots[flat] = size
                    region[size] = flat

    return cached_launches(SimpleNamespace(list_sorted=list_sorted, list_marked=list_marked))


def node_blocks(grid_shape: tuple[int, ...]) -> tuple[int, ...]:
    """Blocks of nodes per axis for a grid of ``grid_shape`` nodes (the last may reach past
    the grid)."""
    return tuple(-(-nodes // BLOCK) for nodes in grid_shape)


class SparseGrid:
    """The pool blocks of one simulation's grid (see the module's docstring).

    ``grid_shape``: nodes per axis (padding included); ``from_sort``: list from the scatter
    order's sort (the CPU), else from the particles (GPUs)."""

    def __init__(self, store, grid_shape: tuple[int, ...], from_sort: bool) -> None:
        self.store, self.shape, self.from_sort = store, tuple(grid_shape), from_sort
        self.dim = len(grid_shape)
        self.blocks = node_blocks(grid_shape)
        self.slots = store.array(math.prod(self.blocks), integer=True)
        store.assign(self.slots, np.full(math.prod(self.blocks), EMPTY, np.int32))
        self.sizes = store.array(2, integer=True)
        self.region = store.array(1, integer=True)
        self.active = 0  # pool blocks in use after the latest listing
        self.kernels = build_sparse_kernels(self.dim)

    @property
    def capacity(self) -> int:
        """Pool blocks the grid arrays hold."""
        return int(self.region.shape[0])

    @property
    def rows(self) -> int:
        """Rows of the grid arrays: ``capacity * BLOCK^d``."""
        return self.capacity * BLOCK**self.dim

    @property
    def lookup(self) -> tuple:
        """The kernel arguments that find a node's row: ``slots``, blocks of nodes per axis,
        nodes per axis (see :func:`engine.solver.kernels.node_row`)."""
        return self.slots, ti.Vector(self.blocks), ti.Vector(self.shape)

    @property
    def listing(self) -> tuple:
        """The kernel arguments that find a row's node: ``region``, ``sizes``, blocks of nodes
        per axis, nodes per axis (see :func:`engine.solver.kernels.pool_node`)."""
        return self.region, self.sizes, ti.Vector(self.blocks), ti.Vector(self.shape)

    def refresh(self, order, x, dx: float) -> bool:
        """List the blocks of nodes that the particles at ``x`` ``(N, d)`` (m) reach on a grid
        of spacing ``dx`` (m), from ``order`` (a refreshed
        :class:`~engine.solver.scatter_order.ScatterOrder`) on the CPU. True when the pool
        holds them; False when it had to grow: the caller allocates the grid arrays again
        (:attr:`rows` rows, zeroed)."""
        self._list(order, x, dx)
        self.active = int(self.sizes[0])  # the listing's one read (10 us; to_numpy: 100)
        if self.active <= self.capacity:
            return True
        store, flat = self.store, math.prod(self.blocks)
        store.assign(self.slots, np.full(flat, EMPTY, np.int32))
        store.assign(self.sizes, np.zeros(2, np.int32))  # the new arrays are zero everywhere
        self.region = store.array(self.active + self.active // 4 + 1, integer=True)
        self._list(order, x, dx)
        return False

    def _list(self, order, x, dx: float) -> None:
        blocks = ti.Vector(self.blocks)
        if self.from_sort:
            self.kernels.list_sorted(
                order.start, ti.Vector(order.blocks), blocks, self.slots, self.region, self.sizes
            )
        else:
            self.kernels.list_marked(
                x, dx, ti.Vector(self.shape), blocks, self.slots, self.region, self.sizes
            )


on_restart(build_sparse_kernels.cache_clear)
