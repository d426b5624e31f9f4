"""The particles in block order, so that the CPU's particle-to-grid scatter runs on every core
and stays bitwise reproducible.

The grid's nodes are cut into blocks of :data:`BLOCK` nodes a side. A particle belongs to the
block of its stencil's lower node; its quadratic B-spline writes to that node and the next two
along each axis, so into its block and the next one. The blocks fall into ``2^d`` colours by the
parity of their block index on each axis: two blocks of one colour are at least ``BLOCK >= 2``
nodes apart on some axis, farther than any of their particles reach, so they never write to the
same node. The scatter (:func:`engine.solver.kernels.build_kernels`) goes colour by colour; within
a colour the blocks run in parallel and each block's particles run in increasing index order.
Every node therefore sums its contributions in one fixed order, whatever the number of threads:
the result is bitwise the same on 1 or 64 cores.

The order is made again before every scatter by a counting sort in three passes over the
particles (:meth:`ScatterOrder.refresh`), a few percent of a step: it stays right however much
the particles mix (a dam break mixes them within a second). The particle arrays themselves keep
their order: a particle's row is its identity for the output files, checkpoints, surface meshes
and training data. GPUs scatter with atomic adds and skip all of this. (The blocks of nodes the
particles reach, the sparse grid's, are listed from this sort: :mod:`engine.solver.sparse_grid`.)
"""

import math
from functools import lru_cache
from types import SimpleNamespace

import taichi as ti

from engine.solver.kernels import BLOCK, TASK_ITERATIONS, nd, particle_stencil
from engine.solver.launch import cached_launches
from engine.solver.runtime import on_restart


@ti.func
def block_colour(block, blocks):
    """The colour (0 .. 2^d - 1) of flat block index ``block`` on a grid of ``blocks`` blocks
    per axis (row-major): bit ``i`` is the parity of its index on axis ``i``."""
    colour = 0
    rest = block
    for i in ti.static(range(blocks.n)):
        axis = blocks.n - 1 - i
        colour += (rest % blocks[axis] % 2) << axis
        rest //= blocks[axis]
    return colour


#: Parts each colour's blocks are cut into, per thread: enough for the threads to even out
#: blocks of different particle counts.
PARTS_PER_THREAD = 8


def block_counts(grid_shape: tuple[int, ...]) -> tuple[int, ...]:
    """Blocks per axis for a grid of ``grid_shape`` nodes (a stencil's lower node is at most
    the third-last node on each axis)."""
    return tuple((nodes - 3) // BLOCK + 1 for nodes in grid_shape)


@lru_cache(maxsize=4)
def build_order_kernels(dim: int) -> SimpleNamespace:
    """Compile-once kernels of the counting sort by block, for ``dim`` dimensions."""
    real = ti.f64 if ti.lang.impl.current_cfg().default_fp == ti.f64 else ti.f32
    vec = ti.types.vector(dim, real)
    ivec = ti.types.vector(dim, ti.i32)

    @ti.kernel
    def count(
        x: nd(vec),
        dx: real,
        blocks: ivec,
        upper: ivec,
        block_of: nd(ti.i32),
        counts: nd(ti.i32, 2),
    ):
        """Each particle's flat block index, and per chunk of particles the count in each block
        (``counts`` ``(chunks, blocks)``; chunk ``c`` is one thread's run of consecutive
        particles)."""
        for chunk, block in ti.ndrange(counts.shape[0], counts.shape[1]):
            counts[chunk, block] = 0
        chunks, n = counts.shape[0], x.shape[0]
        size = (n + chunks - 1) // chunks
        for spread in range(chunks * TASK_ITERATIONS):  # a chunk per thread task
            if spread % TASK_ITERATIONS == 0:
                chunk = spread // TASK_ITERATIONS
                for p in range(chunk * size, ti.min(n, (chunk + 1) * size)):
                    base, _ = particle_stencil(x[p], 1.0 / dx, upper)
                    flat = 0
                    for i in ti.static(range(dim)):
                        flat = flat * blocks[i] + base[i] // BLOCK
                    block_of[p] = flat
                    counts[chunk, flat] = counts[chunk, flat] + 1

    @ti.kernel
    def place(block_of: nd(ti.i32), counts: nd(ti.i32, 2), start: nd(ti.i32), order: nd(ti.i32)):
        """``start`` ``(blocks + 1,)``: where each block's particles begin in ``order`` ``(N,)``,
        which lists them block by block, each block's in increasing index."""
        chunks, n = counts.shape[0], block_of.shape[0]
        for block in range(counts.shape[1]):
            total = 0
            for chunk in range(chunks):
                total += counts[chunk, block]
            start[block + 1] = total
        start[0] = 0
        ti.loop_config(serialize=True)
        for block in range(counts.shape[1]):
            start[block + 1] += start[block]
        for block in range(counts.shape[1]):  # counts become each chunk's next free row
            row = start[block]
            for chunk in range(chunks):
                here = counts[chunk, block]
                counts[chunk, block] = row
                row += here
        size = (n + chunks - 1) // chunks
        for spread in range(chunks * TASK_ITERATIONS):
            if spread % TASK_ITERATIONS == 0:
                chunk = spread // TASK_ITERATIONS
                for p in range(chunk * size, ti.min(n, (chunk + 1) * size)):
                    block = block_of[p]
                    order[counts[chunk, block]] = p
                    counts[chunk, block] = counts[chunk, block] + 1

    @ti.kernel
    def list_colours(
        start: nd(ti.i32),
        blocks: ivec,
        colour_start: nd(ti.i32),
        colour_blocks: nd(ti.i32),
        filled: nd(ti.i32),
    ):
        """The blocks that hold particles, colour by colour (each colour's in increasing
        index): ``colour_blocks`` from ``colour_start[c]`` to ``colour_start[c + 1]``
        (``filled`` ``(2^d,)``: scratch). Serial: passes over the blocks, a few microseconds
        per thousand."""
        ti.loop_config(serialize=True)
        for colour in range(2**dim + 1):
            colour_start[colour] = 0
            if colour < 2**dim:
                filled[colour] = 0
        ti.loop_config(serialize=True)
        for block in range(start.shape[0] - 1):
            if start[block + 1] > start[block]:
                colour_start[block_colour(block, blocks) + 1] += 1
        ti.loop_config(serialize=True)
        for colour in range(2**dim):
            colour_start[colour + 1] += colour_start[colour]
        ti.loop_config(serialize=True)
        for block in range(start.shape[0] - 1):
            if start[block + 1] > start[block]:
                colour = block_colour(block, blocks)
                colour_blocks[colour_start[colour] + filled[colour]] = block
                filled[colour] += 1

    return cached_launches(SimpleNamespace(count=count, place=place, list_colours=list_colours))


class ScatterOrder:
    """The block order of a simulation's particles for the coloured CPU scatter.

    ``order`` ``(N,)`` int32: particle rows, block by block; ``start`` ``(blocks + 1,)`` int32:
    where each block's rows begin in ``order`` (the sparse grid takes its blocks of nodes from
    it, :mod:`engine.solver.sparse_grid`); ``blocks``: blocks per axis. On a GPU (or with
    ``coloured`` False) the arrays are one-element placeholders and :meth:`refresh` does
    nothing: the scatter is atomic there."""

    def __init__(self, store, grid_shape: tuple[int, ...], n_particles: int, coloured: bool):
        self.coloured = coloured
        self.dim = len(grid_shape)
        self.blocks = block_counts(grid_shape)
        self.upper = tuple(nodes - 3 for nodes in grid_shape)
        chunks = max(1, ti.lang.impl.current_cfg().cpu_max_num_threads)
        rows, flat = (n_particles, math.prod(self.blocks)) if coloured else (1, 1)
        self.order = store.array(rows, integer=True)
        self.block_of = store.array(rows, integer=True)
        self.start = store.array(flat + 1, integer=True)
        self.counts = store.grid((chunks if coloured else 1, flat), integer=True)
        self.colour_blocks = store.array(flat, integer=True)
        self.colour_start = store.array(2**self.dim + 1, integer=True)
        self.colour_filled = store.array(2**self.dim, integer=True)
        self.parts = PARTS_PER_THREAD * chunks
        # each part's sums over one block of particles (see particle_to_grid), zero between
        tile = (self.parts, *[BLOCK + 2] * self.dim) if coloured else (1,) * (self.dim + 1)
        self.tile = store.grid(tile, self.dim + 1)
        self.kernels = build_order_kernels(self.dim) if coloured else None

    def refresh(self, x, dx: float) -> None:
        """Sort the particles at positions ``x`` ``(N, d)`` (m) by block, for a grid of
        spacing ``dx`` (m)."""
        if not self.coloured:
            return
        blocks, upper = ti.Vector(self.blocks), ti.Vector(self.upper)
        self.kernels.count(x, dx, blocks, upper, self.block_of, self.counts)
        self.kernels.place(self.block_of, self.counts, self.start, self.order)
        self.kernels.list_colours(
            self.start, blocks, self.colour_start, self.colour_blocks, self.colour_filled
        )


on_restart(build_order_kernels.cache_clear)
