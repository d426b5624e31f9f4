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
- ``sizes`` ``(3,)`` int32: the pool blocks in use, those the last scatter wrote (the rows
  that :func:`~engine.solver.kernels.build_kernels`' ``clear_pool`` zeroes; every row past
  both is zero), and the blocks the particles' next positions reach (counted as the
  grid-to-particle transfer moves them: :func:`engine.solver.kernels.mark_next_blocks`).

Memory then follows the particles: a body crossing a large domain costs the blocks around it,
plus two int32 per block of nodes (``slots`` and the next-block count's ``marks``: 1/128 of a
dense grid's storage in 3D). On the CPU the blocks are
listed from the scatter order's counting sort, in one serial pass over its blocks, so pool
blocks are numbered in one fixed order and runs are reproducible; on GPUs every particle marks
its blocks in parallel and a parallel pass over the blocks of nodes numbers them with an
atomic counter. The pool grows when the particles could reach more blocks than it holds (by
a quarter more than needed, the grid arrays allocated again); it never shrinks.
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
                        flat = flat * blocks[i] + ti.min(index[i] + offset[i], blocks[i] - 1)
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
                    flat = flat * blocks[i] + ti.min(base[i] // BLOCK + offset[i], blocks[i] - 1)
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
    order's sort (the CPU), else from the particles (GPUs).

    The host learns how many blocks a listing found from the step's health report (the step's
    one host read, :meth:`observe`), together with how many the next listing will find (the
    grid-to-particle transfer counts the blocks the moved particles reach): the pool is grown
    to that before the next listing, which then needs no read of its own. Only after particles
    moved otherwise (:meth:`forget`: a checkpoint restored, states set from outside, a stage
    before the scatter) is a listing's count read at once."""

    def __init__(self, store, grid_shape: tuple[int, ...], from_sort: bool) -> None:
        self.store, self.shape, self.from_sort = store, tuple(grid_shape), from_sort
        self.dim = len(grid_shape)
        self.blocks = node_blocks(grid_shape)
        flat = math.prod(self.blocks)
        self.slots = store.array(flat, integer=True)
        store.assign(self.slots, np.full(flat, EMPTY, np.int32))
        self.marks = store.array(flat, integer=True)
        self.stamp = 0  # the latest count's mark in ``marks``
        self.sizes = store.array(3, integer=True)
        self.region = store.array(1, integer=True)
        self.active = 0  # pool blocks in use after the latest listing, once known
        self.bound: int | None = None  # blocks the next listing will find; None: unknown
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
        :class:`~engine.solver.scatter_order.ScatterOrder`) on the CPU. True when the grid
        arrays stay; False when the pool grew: the caller allocates them again (:attr:`rows`
        rows, zeroed)."""
        kept = True
        if self.bound is not None and self.bound > self.capacity:
            self._grow(self.bound)
            kept = False
        self._list(order, x, dx)
        if self.bound is None:
            self.active = int(self.sizes[0])  # no bound known: read the count now (10 us)
            if self.active > self.capacity:
                self._grow(self.active)
                self._list(order, x, dx)
                kept = False
        return kept

    @property
    def counting(self) -> tuple:
        """The kernel arguments with which grid-to-particle counts the blocks of nodes the
        next listing will find (``marks``, a new ``stamp``, ``sizes``; see
        :func:`engine.solver.kernels.mark_next_blocks`)."""
        self.stamp += 1
        return self.marks, self.stamp, self.sizes

    def observe(self, active: int, following: int) -> bool:
        """Take the step's counts from its health report: the blocks its listing found and
        those the next listing will find. False if the listing found more than the pool
        held (the step's grid missed them)."""
        self.active, self.bound = active, following
        return active <= self.capacity

    def forget(self) -> None:
        """The particles moved other than by a step: the next listing reads its count."""
        self.bound = None

    def _grow(self, needed: int) -> None:
        """A pool of a quarter more than ``needed`` blocks, nothing listed in it."""
        store, flat = self.store, math.prod(self.blocks)
        store.assign(self.slots, np.full(flat, EMPTY, np.int32))
        store.assign(self.sizes, np.zeros(3, np.int32))  # the new arrays are zero everywhere
        self.region = store.array(needed + needed // 4 + 1, integer=True)

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
