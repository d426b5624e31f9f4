"""The sparse grid (engine/solver/sparse_grid.py): only the blocks of nodes that particles reach
are stored.

The checks are exact: the pool holds the blocks that a NumPy listing of the particles' quadratic
B-spline stencils (Steffen et al. 2008, as the solver uses) reaches and no other; the GPUs'
listing marks the same blocks; rows outside the pool are zero; a pool that grows gives the bits
of one that was large from the start; the same body costs the same grid memory in a domain 4
times as wide; and the GPUs' path (marked listing, atomic scatter), run here on the CPU, gives
the CPU's results to float round-off.
"""

import numpy as np
import pytest
from water_block import water_block

import engine.solver.kernels as kernels
import engine.solver.simulation as simulation
from engine.solver.kernels import BLOCK, PAD
from engine.solver.simulation import Simulation, SimulationError
from engine.solver.sparse_grid import EMPTY, SparseGrid


def block_scene(dim: int, width: float = 1.0, velocity: float = 0.0, gravity: float = -9.8):
    """A water block 0.4 m wide near the origin of a domain ``width`` m wide, dx = 1/20 m,
    moving out from its corner at ``velocity`` m/s."""
    return water_block(dim, [0.05] * dim, [0.45] * dim, width, round(20 * width), gravity, velocity)


def reached_blocks(sim: Simulation) -> np.ndarray:
    """Flat indices of the blocks of nodes the particles' stencils reach (NumPy)."""
    x, dx, dim = sim.numpy("x"), sim.grid.dx, sim.dim
    upper = np.array(sim.grid.shape) - 3
    base = np.clip(np.floor(x / dx + PAD - 0.5).astype(int), 0, upper)
    reached = [(base + np.array(offset)) // BLOCK for offset in np.ndindex(*([3] * dim))]
    flat = np.ravel_multi_index(np.concatenate(reached).T, sim.sparse.blocks)
    return np.unique(flat)


@pytest.mark.parametrize("dim", [2, 3])
def test_the_pool_holds_exactly_the_blocks_the_particles_reach(load, dim):
    """After the particles moved: every block of nodes a stencil reaches has one pool block,
    the pool holds no other, ``slots`` and ``region`` are inverse, and every row past the
    pool's blocks is zero."""
    sim = Simulation(load(block_scene(dim, velocity=0.5)))
    for _ in range(12):
        sim.step(sim.stable_dt())
    sim.list_grid()
    sparse = sim.sparse
    active = int(sparse.sizes[0])
    region = sparse.region.to_numpy()[:active]
    slots = sparse.slots.to_numpy()
    assert np.array_equal(np.sort(region), reached_blocks(sim))
    assert np.array_equal(slots[region], np.arange(active))
    assert (slots != EMPTY).sum() == active
    sim.scatter(sim.stable_dt())
    rows = sim.grid_nodes.to_numpy()
    assert np.all(rows[active * BLOCK**dim :] == 0.0)
    assert rows[: active * BLOCK**dim, dim].sum() == pytest.approx(
        sim.numpy("mass").sum(), rel=1e-5
    )


@pytest.mark.parametrize("dim", [2, 3])
def test_the_gpu_listing_marks_the_blocks_the_sorted_listing_lists(load, dim):
    """The GPUs' listing (every particle marks its blocks, then an atomic count numbers them),
    run here on the CPU, lists the same blocks as the CPU's, each once."""
    sim = Simulation(load(block_scene(dim, velocity=0.5)))
    for _ in range(8):
        sim.step(sim.stable_dt())
    sim.list_grid()
    marked = SparseGrid(sim.store, sim.grid.shape, from_sort=False)
    marked.refresh(None, sim.x, sim.grid.dx)
    listed = marked.region.to_numpy()[: marked.active]
    assert len(np.unique(listed)) == marked.active
    assert np.array_equal(np.sort(listed), reached_blocks(sim))
    slots = marked.slots.to_numpy()
    assert np.array_equal(slots[listed], np.arange(marked.active))


def scattering_boxes() -> str:
    """Nine water boxes a cell wide, three cells apart around the centre of a 2 m square,
    flying apart at up to 3 m/s along each axis, no gravity."""
    text = block_scene(2, width=2.0, gravity=0.0).split("[[bodies]]")[0]
    for sx, sy in np.ndindex(3, 3):
        low = [0.925 + 0.15 * (s - 1) for s in (sx, sy)]
        text += f"""
[[bodies]]
material = "water"
shape = "box"
min = {low}
max = {[value + 0.05 for value in low]}
velocity = {[3.0 * (sx - 1), 3.0 * (sy - 1)]}
"""
    return text


def test_a_pool_that_grows_gives_the_bits_of_one_large_from_the_start(load):
    """Boxes flying apart reach more blocks each step: the pool grows, more than once, and
    the run is bitwise the run whose pool held every block of the grid from the start."""
    text = scattering_boxes()
    growing, large = Simulation(load(text)), Simulation(load(text))
    all_blocks = large.sparse.blocks[0] * large.sparse.blocks[1]
    large.sparse.region = large.store.array(all_blocks, integer=True)
    large._allocate_grid()
    capacities = []
    for _ in range(130):
        dt = growing.stable_dt()
        growing.step(dt)
        large.step(dt)
        capacities.append(growing.sparse.capacity)
    assert len(set(capacities)) >= 3 and capacities == sorted(capacities)
    assert large.sparse.capacity == all_blocks
    assert np.array_equal(growing.numpy("x"), large.numpy("x"))
    assert np.array_equal(growing.numpy("v"), large.numpy("v"))


def test_the_same_body_costs_the_same_grid_memory_in_a_domain_four_times_as_wide(load):
    """A 3D block at the same dx in a 1 m and a 4 m domain: the same pool (the particles reach
    the same blocks), so grid storage differs only by the two int32 per block of nodes of
    ``slots`` and ``marks``; dense, the 4 m domain's grid would be 64 times the 1 m domain's."""
    small, wide = (Simulation(load(block_scene(3, width))) for width in (1.0, 4.0))
    for sim in (small, wide):
        sim.step(sim.stable_dt())
    assert small.sparse.active == wide.sparse.active
    assert small.sparse.rows == wide.sparse.rows
    per_block = [2 * sim.sparse.slots.to_numpy().nbytes for sim in (small, wide)]
    assert wide.storage_bytes - small.storage_bytes == per_block[1] - per_block[0]
    dense = np.prod(wide.grid.shape) * 4 * small.grid_nodes.to_numpy().itemsize
    assert wide.storage_bytes < 0.25 * dense


def test_the_gpu_path_gives_the_cpu_path_results_to_round_off(load, monkeypatch):
    """A 2D block thrown and dropped for 40 steps through the GPUs' path (the marked listing
    and the atomic scatter, compiled here for the CPU) and through the CPU's: positions agree
    to 1e-5 of a cell (atomic adds sum in another order)."""
    text = block_scene(2, velocity=1.0)
    results = []
    try:
        for coloured in (False, True):
            monkeypatch.setattr(kernels, "coloured_scatter_on", lambda arch, c=coloured: c)
            monkeypatch.setattr(simulation, "coloured_scatter_on", lambda arch, c=coloured: c)
            kernels.build_kernels.cache_clear()
            sim = Simulation(load(text))
            assert sim.scatter_order.coloured == sim.sparse.from_sort == coloured
            for _ in range(40):
                sim.step(2e-4)
            results.append(sim.numpy("x"))
    finally:
        kernels.build_kernels.cache_clear()  # later tests compile the CPU's path again
    assert np.abs(results[0] - results[1]).max() < 1e-5 * sim.grid.dx


def test_the_health_report_counts_the_next_listing(load):
    """After a step the host knows, from the step's one read, how many blocks the next listing
    will find (grid-to-particle counted those the moved particles reach): exactly the blocks
    a NumPy listing of the new positions finds, and the pool already holds them."""
    sim = Simulation(load(block_scene(3, velocity=1.0)))
    for _ in range(4):
        sim.step(sim.stable_dt())
    assert sim.sparse.bound == len(reached_blocks(sim)) <= sim.sparse.capacity
    sim.list_grid()
    assert int(sim.sparse.sizes[0]) == sim.sparse.bound


def test_particles_moved_behind_its_back_are_refused_then_counted(load):
    """Particles spread twice as wide without saying so reach more blocks than the pool was
    grown for: the step is refused with the fix; after ``particles_changed`` it runs."""
    sim = Simulation(load(block_scene(2, gravity=0.0)))
    sim.step(1e-4)
    x = sim.numpy("x")
    sim.store.assign(sim.x, 2.0 * x)
    with pytest.raises(SimulationError, match="more than the .* the sparse grid held") as error:
        sim.step(1e-4)
    assert "particles_changed()" in error.value.fix
    sim.store.assign(sim.x, 2.0 * x)
    sim.particles_changed()
    sim.step(1e-4)
    assert sim.sparse.active <= sim.sparse.capacity


def test_particles_beyond_the_far_wall_count_only_blocks_of_the_grid(load):
    """Particles thrown past the far faces (the step is refused: they escaped) are counted at
    their clamped stencils' blocks, never past the last block: a grid of 27 nodes a side has 7
    blocks, and a stencil starting at node 24 is all in block 6 (an index of 7 would write past
    ``marks`` and ``slots``)."""
    sim = Simulation(load(block_scene(2, gravity=0.0)))
    assert sim.grid.shape == (27, 27) and sim.sparse.blocks == (7, 7)
    sim.step(1e-4)
    x = sim.numpy("x")
    x[:10] = 1.2  # m, past the domain's far corner
    sim.store.assign(sim.x, x)
    sim.particles_changed()
    with pytest.raises(SimulationError, match="left the domain"):
        sim.step(1e-4)
    upper = np.array(sim.grid.shape) - 3
    base = np.clip(np.floor(sim.numpy("x") / sim.grid.dx + PAD - 0.5).astype(int), 0, upper)
    blocks = np.array(sim.sparse.blocks)
    reached = [np.minimum(base // BLOCK + c, blocks - 1) for c in np.ndindex(2, 2)]
    flat = np.ravel_multi_index(np.concatenate(reached).T, sim.sparse.blocks)
    assert sim.sparse.bound == len(np.unique(flat))
