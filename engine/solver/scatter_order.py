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
and training data. GPUs scatter with atomic adds and skip all of this.
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
    def list_blocks(
        start: nd(ti.i32),
        blocks: ivec,
        colour_start: nd(ti.i32),
        colour_blocks: nd(ti.i32),
        filled: nd(ti.i32),
        node_blocks: ivec,
        marks: nd(ti.i32),
        region: nd(ti.i32, 2),
        region_size: nd(ti.i32),
        slot: ti.i32,
    ):
        """The blocks that hold particles, colour by colour (each colour's in increasing
        index): ``colour_blocks`` from ``colour_start[c]`` to ``colour_start[c + 1]``
        (``filled`` ``(2^d,)``: scratch). And the region the scatter writes: the blocks of
        nodes (``node_blocks`` per axis, flat) of each occupied block and its next one on each
        axis, in increasing index, ``region[slot, :region_size[slot]]`` (``marks``: scratch,
        one per block of nodes). Serial: one pass over the blocks, a few microseconds per
        thousand."""
        for block in range(marks.shape[0]):
            marks[block] = 0
        for block in range(start.shape[0] - 1):
            if start[block + 1] > start[block]:
                index = ti.Vector.zero(ti.i32, dim)
                rest = block
                for i in ti.static(range(dim)):
                    axis = ti.static(dim - 1 - i)
                    index[axis] = rest % blocks[axis]
                    rest //= blocks[axis]
                for offset in ti.static(ti.grouped(ti.ndrange(*([2] * dim)))):
                    flat = 0
                    for i in ti.static(range(dim)):
                        here = ti.min(index[i] + offset[i], node_blocks[i] - 1)
                        flat = flat * node_blocks[i] + here
                    marks[flat] = 1
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
        size = 0
        ti.loop_config(serialize=True)
        for block in range(marks.shape[0]):
            if marks[block]:
                region[slot, size] = block
                size += 1
        region_size[slot] = size

    return cached_launches(SimpleNamespace(count=count, place=place, list_blocks=list_blocks))


class ScatterOrder:
    """The block order of a simulation's particles for the coloured CPU scatter.

    ``order`` ``(N,)`` int32: particle rows, block by block; ``start`` ``(blocks + 1,)`` int32:
    where each block's rows begin in ``order``; ``blocks``: blocks per axis. On a GPU (or with
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
        self.node_blocks = tuple(-(-nodes // BLOCK) for nodes in grid_shape)
        regions = math.prod(self.node_blocks) if coloured else 1
        self.marks = store.array(regions, integer=True)
        self.region = store.grid((2, regions), integer=True)
        self.region_size = store.array(2, integer=True)
        self.written = 1  # the region the last scatter wrote: the grid is zero elsewhere
        self.slot = 0  # the region of the latest refresh (the other one, if none since)
        self.kernels = build_order_kernels(self.dim) if coloured else None

    def region_of(self, slot: int) -> tuple:
        """The kernel arguments naming region ``slot``: the block list, the sizes, the slot
        and the blocks of nodes per axis (see :func:`engine.solver.kernels.region_node`)."""
        return self.region, self.region_size, slot, ti.Vector(self.node_blocks)

    def refresh(self, x, dx: float) -> None:
        """Sort the particles at positions ``x`` ``(N, d)`` (m) by block, for a grid of
        spacing ``dx`` (m)."""
        if not self.coloured:
            return
        blocks, upper = ti.Vector(self.blocks), ti.Vector(self.upper)
        self.kernels.count(x, dx, blocks, upper, self.block_of, self.counts)
        self.kernels.place(self.block_of, self.counts, self.start, self.order)
        self.slot = 1 - self.written
        self.kernels.list_blocks(
            self.start, blocks, self.colour_start, self.colour_blocks, self.colour_filled,
            ti.Vector(self.node_blocks), self.marks, self.region, self.region_size, self.slot,
        )  # fmt: skip


on_restart(build_order_kernels.cache_clear)
