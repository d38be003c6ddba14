"""``cupy.ElementwiseKernel`` and ``cupy.ReductionKernel`` for the CuPy double: the kernel's
own CUDA-C source, compiled for the CPU by the C++ compiler and run in a loop.

So the double checks the fused kernels' real code, not a NumPy imitation of it.  What a
kernel sees is what CuPy gives it:

* every array argument is a ``CArray`` indexed by the *logical* C-order position
  (``x[i]``) or by a multi-index (``ptrdiff_t idx[] = {n, c, h, w}; x[idx]``), whatever
  the array's strides (a view, a transposed or broadcast array);
* a non-raw parameter is named by its element: the inputs broadcast together, the loop
  runs over ``i`` in ``[0, _ind.size())`` and ``x`` is the i-th element of each;
* a ``raw`` parameter is the whole array; type placeholders (``T``) take the dtype of the
  first array given for them; a scalar for a typed parameter is cast to it;
* a reduction broadcasts its inputs, reduces ``axis`` (all by default) with
  ``map_expr`` / ``reduce_expr`` (``a``, ``b``) / ``post_map_expr`` from ``identity``,
  in ``reduce_type``.

The order of a reduction's sum is sequential here and a tree on a GPU: float results
agree to rounding, not bit for bit.  Compiled libraries are cached in the temp folder
under the hash of their source.
"""
import ctypes
import hashlib
import os
import re
import subprocess
import tempfile

import numpy as np

_CTYPES = {"float32": "float", "float64": "double", "float16": None, "int8": "signed char",
           "int16": "short", "int32": "int", "int64": "long long", "uint8": "unsigned char",
           "uint32": "unsigned int", "uint64": "unsigned long long", "bool": "bool"}
MAX_DIMS = 8
_PRELUDE = r"""
#include <cmath>
#include <cstddef>
#include <algorithm>
using std::max; using std::min;
#define __device__
#define __forceinline__ inline
static inline float rsqrt(float x) { return 1.0f / std::sqrt(x); }
static inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
template <typename T> struct CArray {
    char* data_; int ndim_; ptrdiff_t size_; const long long* shape_; const long long* strides_;
    int layout_;                                 // 1: C-contiguous, 2: one value broadcast, 0: other
    CArray(char* d, const long long* meta) : data_(d), ndim_((int)meta[0]), size_(1),
        shape_(meta + 1), strides_(meta + 1 + %(MAX)d) {
        ptrdiff_t step = sizeof(T);
        bool contiguous = true, constant = true;
        for (int k = ndim_ - 1; k >= 0; --k) {
            size_ *= shape_[k];
            if (shape_[k] != 1 && strides_[k] != step) contiguous = false;
            if (shape_[k] != 1 && strides_[k] != 0) constant = false;
            step *= shape_[k];
        }
        layout_ = contiguous ? 1 : constant ? 2 : 0;
    }
    T& operator[](ptrdiff_t i) const {           // the logical C-order position i
        if (layout_ == 1) return reinterpret_cast<T*>(data_)[i];
        if (layout_ == 2) return *reinterpret_cast<T*>(data_);
        ptrdiff_t off = 0;
        for (int k = ndim_ - 1; k >= 0; --k) { off += (i %% shape_[k]) * strides_[k]; i /= shape_[k]; }
        return *reinterpret_cast<T*>(data_ + off);
    }
    template <size_t N> T& operator[](const ptrdiff_t (&idx)[N]) const {   // a multi-index
        ptrdiff_t off = 0;
        for (int k = 0; k < ndim_; ++k) off += idx[k] * strides_[k];
        return *reinterpret_cast<T*>(data_ + off);
    }
    ptrdiff_t size() const { return size_; }
};
struct Indexer { ptrdiff_t n; ptrdiff_t size() const { return n; } };
""" % {"MAX": MAX_DIMS}


def _parse(params):
    """'T x, raw T img, float64 eps' -> [(raw, type, name), ...]."""
    out = []
    for item in filter(None, (p.strip() for p in params.split(","))):
        words = item.split()
        raw = words[0] == "raw"
        if raw:
            words = words[1:]
        if len(words) != 2:
            raise ValueError(f"fake cupy: cannot read the kernel parameter {item!r}")
        out.append((raw, words[0], words[1]))
    return out


def _is_placeholder(type_name):
    """``T``, ``S``: any name that is not a dtype's (as in CuPy)."""
    return type_name not in _CTYPES


def _ctype(dtype):
    name = _CTYPES.get(np.dtype(dtype).name)
    if name is None:
        raise TypeError(f"fake cupy: no C type for {np.dtype(dtype)} in a user kernel")
    return name


def _compile(source):
    folder = os.path.join(tempfile.gettempdir(), f"tinyres-cupy-double-{os.getuid()}")
    os.makedirs(folder, exist_ok=True)
    lib = os.path.join(folder, hashlib.sha1(source.encode()).hexdigest()[:20] + ".so")
    if not os.path.exists(lib):
        src = lib[:-3] + f".{os.getpid()}.cpp"
        with open(src, "w") as f:
            f.write(source)
        tmp = lib + f".{os.getpid()}.tmp"
        done = subprocess.run(["g++", "-O2", "-std=c++14", "-shared", "-fPIC", "-o", tmp, src],
                              capture_output=True, text=True)
        os.unlink(src)
        if done.returncode:
            raise RuntimeError(f"fake cupy: the kernel does not compile:\n{done.stderr}\n{source}")
        os.replace(tmp, lib)        # atomic: parallel test processes never load half a file
    return ctypes.CDLL(lib)


def _meta(a):
    meta = np.zeros(1 + 2 * MAX_DIMS, np.int64)
    meta[0] = a.ndim
    meta[1:1 + a.ndim], meta[1 + MAX_DIMS:1 + MAX_DIMS + a.ndim] = a.shape, a.strides
    return meta


class _UserKernel:
    """What the two kinds share: the parameter lists, binding the call's arguments, the C
    signature and its call."""

    def __init__(self, in_params, out_params, name, preamble):
        self.in_params, self.out_params = _parse(in_params), _parse(out_params)
        self.name, self.preamble = name, preamble
        self._libs = {}

    def _bind(self, args):
        """The dtype of each placeholder, then every parameter's host array or scalar."""
        from cupy_double import _unwrap
        params = self.in_params + self.out_params
        if len(args) not in (len(self.in_params), len(params)):
            raise TypeError(f"fake cupy: {self.name} takes {len(self.in_params)} inputs (and optionally "
                            f"{len(self.out_params)} outputs), got {len(args)} arguments")
        values = [_unwrap(a, self.name, []) for a in args]
        types = {}
        for (raw, t, _), v in zip(params, values):
            if _is_placeholder(t) and isinstance(v, np.ndarray):
                types.setdefault(t, v.dtype)
        dtype = lambda t: np.dtype(types[t]) if _is_placeholder(t) else np.dtype(t)   # noqa: E731
        for (raw, t, name), v in zip(params, values):
            if _is_placeholder(t) and t not in types:
                raise TypeError(f"fake cupy: {self.name}: the type {t} of {name} is not given by any array")
        return values, dtype, types

    def _source(self, types, dtype, body):
        typedefs = "".join(f"typedef {_ctype(d)} {t};\n" for t, d in types.items())
        return (_PRELUDE + typedefs + self.preamble + "\n"
                + 'extern "C" void kernel(char** _ptrs, const long long* _meta, '
                  "long long _n, long long _m) {\n" + body + "}\n")

    def _declare(self, dtype):
        """Each parameter's CArray (scalars come as 0-d arrays); a raw one under its own name."""
        lines = []
        for k, (raw, t, name) in enumerate(self.in_params + self.out_params):
            ct = _ctype(dtype(t))
            lines.append(f"CArray<{ct}> _raw_{name}(_ptrs[{k}], _meta + {k * (1 + 2 * MAX_DIMS)});")
            if raw:
                lines.append(f"CArray<{ct}>& {name} = _raw_{name};")
        return "\n".join(lines) + "\n"

    def _run(self, source, arrays, n, m):
        lib = self._libs.get(source) or self._libs.setdefault(source, _compile(source))
        ptrs = (ctypes.c_void_p * len(arrays))(*[a.__array_interface__["data"][0] for a in arrays])
        meta = np.concatenate([_meta(a) for a in arrays])
        lib.kernel(ptrs, meta.ctypes.data_as(ctypes.c_void_p), ctypes.c_longlong(n), ctypes.c_longlong(m))


def _element_lines(params, dtype, index, outputs):
    lines = []
    for raw, t, name in params:
        if not raw:
            ct = _ctype(dtype(t))
            lines.append(f"{ct}& {name} = _raw_{name}[{index}];" if outputs else
                         f"const {ct} {name} = _raw_{name}[{index}];")
    return "\n".join(lines) + "\n"


def _as_array(value, dtype):
    return value if isinstance(value, np.ndarray) else np.asarray(value, dtype)


class ElementwiseKernel(_UserKernel):
    """``cupy.ElementwiseKernel(in_params, out_params, operation, name, preamble=...)``."""

    def __init__(self, in_params, out_params, operation, name="kernel", reduce_dims=True, preamble="",
                 no_return=False, return_tuple=False, loop_prep="", after_loop="", **kwargs):
        super().__init__(in_params, out_params, name, preamble)
        self.operation, self.loop_prep, self.after_loop = operation, loop_prep, after_loop
        self.no_return, self.return_tuple = no_return, return_tuple

    def __call__(self, *args, size=None, **kwargs):
        from cupy_double import ndarray, _launch
        values, dtype, types = self._bind(args)
        params = self.in_params + self.out_params
        made = []
        shapes = [np.shape(v) for (raw, _, _), v in zip(params, values) if not raw and v is not None]
        shape = np.broadcast_shapes(*shapes) if shapes else (size,)
        if size is not None and shapes and int(np.prod(shape)) != size:
            raise ValueError(f"fake cupy: {self.name}: size={size} and the arrays' shape {shape} disagree")
        host = []
        for k, (raw, t, name) in enumerate(params):
            v = values[k] if k < len(values) else None
            if v is None:                        # an output not given: made here
                v = np.empty(shape, dtype(t))
                values.append(v)
                made.append(v)
            if isinstance(v, np.ndarray):
                if raw:
                    host.append(v)
                elif k >= len(self.in_params):
                    if v.shape != shape:
                        raise ValueError(f"fake cupy: {self.name}: output {name} has shape {v.shape}, "
                                         f"the inputs broadcast to {shape}")
                    host.append(v)
                else:
                    host.append(np.broadcast_to(v.astype(dtype(t), copy=False), shape))
            else:                                # a Python scalar: a 0-d array, broadcast
                scalar = np.asarray(v, dtype(t))
                host.append(scalar.reshape(1) if raw else np.broadcast_to(scalar, shape))
        body = (self._declare(dtype) + "Indexer _ind{(ptrdiff_t)_n};\n" + self.loop_prep + "\n"
                + "for (ptrdiff_t i = 0; i < _n; ++i) {\n"
                + _element_lines(self.in_params, dtype, "i", False)
                + _element_lines(self.out_params, dtype, "i", True)
                + self.operation + ";\n}\n" + self.after_loop + "\n")
        source = self._source(types, dtype, body)
        n = int(np.prod(shape))

        def launch():
            self._run(source, host, n, 0)
        _launch(launch, self.name, made)
        outs = [ndarray(v) if not isinstance(args[k] if k < len(args) else None, ndarray) else args[k]
                for k, v in enumerate(values) if k >= len(self.in_params)]
        if self.no_return:
            return None
        return tuple(outs) if self.return_tuple or len(outs) > 1 else outs[0]


class ReductionKernel(_UserKernel):
    """``cupy.ReductionKernel(in_params, out_params, map_expr, reduce_expr, post_map_expr,
    identity, name, reduce_type=None, preamble=...)``, called with ``axis=`` and ``keepdims=``."""

    def __init__(self, in_params, out_params, map_expr, reduce_expr, post_map_expr, identity,
                 name="reduce_kernel", reduce_type=None, reduce_dims=True, preamble="", **kwargs):
        super().__init__(in_params, out_params, name, preamble)
        self.map_expr, self.reduce_expr, self.post_map_expr = map_expr, reduce_expr, post_map_expr
        self.identity, self.reduce_type = identity, reduce_type

    def __call__(self, *args, axis=None, keepdims=False, **kwargs):
        from cupy_double import ndarray, _launch
        values, dtype, types = self._bind(args)
        ins = [_as_array(v, dtype(t)) for (raw, t, _), v in zip(self.in_params, values)]
        shape = np.broadcast_shapes(*[a.shape for a in ins])
        axes = tuple(range(len(shape))) if axis is None else tuple(
            a % len(shape) for a in ((axis,) if np.isscalar(axis) else axis))
        kept = [d for d in range(len(shape)) if d not in axes]
        out_shape = tuple(shape[d] for d in kept)
        moved = [np.broadcast_to(a.astype(dtype(t), copy=False), shape).transpose(kept + list(axes))
                 for (raw, t, _), a in zip(self.in_params, ins)]
        outs = list(values[len(self.in_params):]) or [None] * len(self.out_params)
        made = []
        for k, ((raw, t, name), v) in enumerate(zip(self.out_params, outs)):
            if v is None:
                outs[k] = np.empty(out_shape, dtype(t))
                made.append(outs[k])
            elif v.shape not in (out_shape, tuple(1 if d in axes else s for d, s in enumerate(shape))):
                raise ValueError(f"fake cupy: {self.name}: output {name} has shape {v.shape}, expected {out_shape}")
        host = moved + [o.reshape(out_shape) if o.shape != out_shape else o for o in outs]
        if any(not np.shares_memory(h, o) for h, o in zip(host[len(moved):], outs) if h.size):
            raise ValueError(f"fake cupy: {self.name}: an output that cannot be reshaped in place")
        reduce_type = self.reduce_type or _ctype(dtype(self.out_params[0][1]))
        body = (self._declare(dtype) + f"typedef {reduce_type} _type_reduce;\n"
                + "for (ptrdiff_t _o = 0; _o < _n; ++_o) {\n"
                + f"_type_reduce _acc = (_type_reduce)({self.identity});\n"
                + "for (ptrdiff_t _j = 0; _j < _m; ++_j) {\n"
                + _element_lines(self.in_params, dtype, "_o * _m + _j", False)
                + f"_type_reduce _b = (_type_reduce)({self.map_expr});\n"
                + f"{{ _type_reduce a = _acc, b = _b; _acc = ({self.reduce_expr}); }}\n}}\n"
                + "{ _type_reduce a = _acc;\n" + _element_lines(self.out_params, dtype, "_o", True)
                + self.post_map_expr + ";\n}\n}\n")
        source = self._source(types, dtype, body)
        n, m = int(np.prod(out_shape)), int(np.prod([shape[d] for d in axes]))

        def launch():
            self._run(source, host, n, m)
        _launch(launch, self.name, made)
        given = args[len(self.in_params):]
        result = [given[k] if k < len(given) and isinstance(given[k], ndarray) else
                  ndarray(o if not keepdims else o.reshape([1 if d in axes else s for d, s in enumerate(shape)]))
                  for k, o in enumerate(outs)]
        return tuple(result) if len(result) > 1 else result[0]
