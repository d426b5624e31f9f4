"""Kernel launches with Taichi's per-call Python work done once per argument set.

Taichi 1.7's Python launch path re-derives each call's template key from every argument and
re-checks every argument's type before it sets it, about 5 us per array argument and 20 us per
call on these CPUs: 17 launches of ~14 arrays in a 3D fluid step cost about 2-3 ms of a
10-16 ms step, the same on any thread count (see the README, "Performance"). A step passes
the same arrays to the same kernels every time, so :class:`CachedLaunch` makes the first call
of each argument set through Taichi's own path (compilation and every check included), and
later calls with the same arrays set the arguments straight into a fresh launch context.

What the fast path takes: Taichi ndarrays, contiguous torch tensors without gradients on the
runtime's device (their data pointer and shape read at every call, as Taichi does), Python ints
and floats, and Taichi vectors and matrices, against the kernel's own annotations. Anything
else (NumPy arrays, templates, a kernel that returns values or prints, an autodiff tape or
forward-mode manager) always takes Taichi's path. The arrays of a cached set are held (at most
:data:`KEPT_SETS` sets per kernel), so an array's ``id`` cannot be reused by another while its
set is cached. The results are Taichi's own, bitwise
(``tests/solver/test_launch.py``).
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from collections.abc import Callable

from taichi._lib import core as _ti_core
from taichi.lang import impl
from taichi.lang._ndarray import Ndarray
from taichi.lang.enums import Layout
from taichi.lang.matrix import Matrix, MatrixType
from taichi.lang.util import cook_dtype
from taichi.types import ndarray_type, primitive_types
from taichi.types.utils import is_signed

#: Argument sets kept per kernel (a kernel that sees more drops the least recently used).
KEPT_SETS = 8

Setter = Callable[[object, tuple, object], None]
#: Arguments keyed by type (their values set at every call); arrays are keyed by identity.
SCALARS = (int, float, Matrix)


def _set_array(context, index: tuple, value: Ndarray) -> None:
    context.set_arg_ndarray(index, value.arr)


def _set_float(context, index: tuple, value) -> None:
    context.set_arg_float(index, float(value))


def _set_int(context, index: tuple, value) -> None:
    context.set_arg_int(index, int(value))


def _tensor_setter(annotation: ndarray_type.NdarrayType, value) -> Setter | None:
    """For a torch tensor Taichi would take without a copy or a gradient, else None."""
    torch = sys.modules.get("torch")
    if torch is None or not isinstance(value, torch.Tensor):
        return None
    cuda = impl.get_runtime().prog.config().arch == _ti_core.Arch.cuda
    on_device = value.device.type == ("cuda" if cuda else "cpu")
    if value.requires_grad or not value.is_contiguous() or not on_device:
        return None
    scalar = annotation.dtype is None or id(annotation.dtype) in primitive_types.type_ids
    element_dims = 0 if scalar else annotation.dtype.ndim
    soa = annotation.layout == Layout.SOA

    def set_tensor(context, index: tuple, tensor) -> None:
        shape = tuple(tensor.shape)
        if element_dims:
            shape = shape[element_dims:] if soa else shape[:-element_dims]
        size = tensor.element_size() * tensor.nelement()
        context.set_arg_external_array_with_shape(index, int(tensor.data_ptr()), size, shape, 0)

    return set_tensor


def _matrix_setter(annotation: MatrixType) -> Setter:
    cast = float if annotation.dtype in primitive_types.real_types else int
    entries = (
        [(i, j) for i in range(annotation.n) for j in range(annotation.m)]
        if annotation.ndim == 2
        else [(i,) for i in range(annotation.n)]
    )

    def set_matrix(context, index: tuple, value) -> None:
        packed = annotation(*[cast(value[entry]) for entry in entries])
        annotation.set_kernel_struct_args(packed, context, index)

    return set_matrix


def _setter(annotation, value) -> Setter | None:
    """How to set ``value`` for an argument annotated ``annotation``, or None (Taichi's path)."""
    if isinstance(annotation, ndarray_type.NdarrayType):
        if isinstance(value, Ndarray):
            return _set_array if value.grad is None else None
        return _tensor_setter(annotation, value)
    if id(annotation) in primitive_types.real_type_ids and isinstance(value, (int, float)):
        return _set_float
    if id(annotation) in primitive_types.integer_type_ids and isinstance(value, int):
        return _set_int if is_signed(cook_dtype(annotation)) else None
    if isinstance(annotation, MatrixType) and isinstance(value, Matrix):
        return _matrix_setter(annotation)
    return None


class CachedLaunch:
    """A ``ti.kernel`` callable that launches with less Python work per call (see the module).

    Called like the kernel itself, positional arguments only; returns None."""

    def __init__(self, kernel) -> None:
        self.kernel = kernel
        self.primal = kernel._primal
        self.sets: OrderedDict[tuple, tuple] = OrderedDict()
        self.__doc__ = kernel.__doc__
        self.__name__ = getattr(kernel, "__name__", "kernel")

    def __call__(self, *args) -> None:
        key = tuple(type(a) if isinstance(a, SCALARS) else id(a) for a in args)
        cached = self.sets.get(key)
        runtime = impl.get_runtime()
        if cached is None or runtime.target_tape is not None or runtime.fwd_mode_manager:
            self.kernel(*args)  # Taichi's path: compiles, checks every argument, launches
            self._remember(key, args)
            return
        self.sets.move_to_end(key)
        t_kernel, setters, _held = cached
        context = t_kernel.make_launch_context()
        for index, (setter, value) in enumerate(zip(setters, args, strict=True)):
            setter(context, (index,), value)
        program = impl.get_runtime().prog
        compiled = program.compile_kernel(program.config(), program.get_device_caps(), t_kernel)
        program.launch_kernel(compiled, context)

    def _remember(self, key: tuple, args: tuple) -> None:
        """Cache the argument set just launched by Taichi's path, if the fast path takes it."""
        primal = self.primal
        if primal.return_type is not None or primal.has_print or len(args) != len(primal.arguments):
            return
        setters = [_setter(a.annotation, v) for a, v in zip(primal.arguments, args, strict=True)]
        if any(s is None for s in setters):
            return
        instance, _features = primal.mapper.lookup(args)
        t_kernel = primal.compiled_kernels[(primal.func, instance, primal.autodiff_mode)]
        held = tuple(a for a in args if not isinstance(a, SCALARS))
        self.sets[key] = (t_kernel, setters, held)
        while len(self.sets) > KEPT_SETS:
            self.sets.popitem(last=False)


def cached_launches(namespace):
    """``namespace`` (a ``SimpleNamespace`` of kernels and functions) with every ``ti.kernel``
    wrapped in :class:`CachedLaunch`."""
    for name, value in vars(namespace).items():
        if getattr(value, "_is_wrapped_kernel", False) and not value._is_classkernel:
            setattr(namespace, name, CachedLaunch(value))
    return namespace
