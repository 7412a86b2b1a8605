"""What real CuPy can check without a GPU: NVRTC compiles every fused kernel, and the CuPy API the library calls
exists and takes the keywords it is given.

**NVRTC.** ``tests/test_kernels.py`` runs each kernel body as C++ on the CPU. That proves the arithmetic but not
that CUDA's compiler accepts the code CuPy builds around the body (its ``CArray``/``CIndexer`` templates, the
binding of each parameter, the device math overloads). NVRTC is a library that compiles without a driver or a
device, so here each kernel goes through the same steps as on a GPU:

- ``cupy.ElementwiseKernel`` is built from the kernel's parameters and body, as ``Kernel.__call__`` builds it;
- CuPy's own code generator (``cupy._core._kernel._get_elementwise_kernel_code``, the function its ``__call__``
  uses; private, so CI pins CuPy in ``constraints-ci.txt``) writes the translation unit for float32 and float64;
- NVRTC compiles it with CuPy's include paths and options for ``compute_90`` (H100/H200; set
  ``TINYAUTOGRAD_NVRTC_ARCH`` for another).

Each kernel is compiled twice per dtype: with contiguous arrays, 32-bit indexing and scalar arguments (the usual
call), and with strided 2-d/3-d arrays and 64-bit indexing (what CuPy generates for views and huge arrays).

**The API.** The CuPy stand-in of the ``fakecuda`` tests is built on NumPy, so a NumPy function or keyword that
CuPy lacks would pass there. The library's source is read instead: every ``xp.``/``cp.``/``cupy.``/``cupyx.``
name it uses must exist in CuPy, and every keyword passed to one, or to an array method, must be a parameter of it.

Needs the ``nvrtc`` extra (CuPy and NVIDIA's NVRTC wheel). Where it is missing the tests are skipped, except in CI,
which installs it and fails instead.
"""
from __future__ import annotations

import ast
import inspect
import os
import pathlib
import re

import numpy as np
import pytest

import tinyautograd  # noqa: F401  (defines every kernel)
import tinyautograd.ops._fused  # noqa: F401
import tinyautograd.optim._fused  # noqa: F401
from tinyautograd import _kernels

ARCH = os.environ.get("TINYAUTOGRAD_NVRTC_ARCH", "compute_90")
ARRAY, INDEXER, SCALAR = 1, 2, 3  # CuPy's _ArgKind values


def _need(what: str, load):
    """``load()``, or a skip where the ``nvrtc`` extra is missing (an error under CI, which installs it)."""
    try:
        return load()
    except Exception as exc:  # no CuPy, or no NVRTC library for it
        if os.environ.get("CI"):
            raise RuntimeError(f"CI checks {what} with real CuPy: install the project with the `nvrtc` extra "
                               "(constraints-ci.txt pins it)") from exc
        pytest.skip(f"needs CuPy and NVRTC (pip install -e '.[nvrtc]'): {type(exc).__name__}: {exc}")


def _load_nvrtc():
    import cupy
    from cupy._core import _carray, _kernel, _scalar, core
    from cupy.cuda import compiler
    from cupy_backends.cuda.libs import nvrtc as libnvrtc

    libnvrtc.getVersion()  # loads the library
    header = "".join(f"#include <{h}>\n" for h in core._cupy_header_list)
    options = tuple(core.assemble_cupy_compiler_options(())) + (f"-arch={ARCH}",)
    return dict(cupy=cupy, kernel=_kernel, indexer=_carray.Indexer, scalar=_scalar.CScalar, header=header,
                options=options, program=compiler._NVRTCProgram)


@pytest.fixture(scope="module")
def nvrtc():
    """CuPy's kernel code generator, header list, compiler options and NVRTC program class."""
    return _need("the CUDA kernels", _load_nvrtc)


def source(nv, kernel: _kernels.Kernel, dtype: np.dtype, strided: bool) -> str:
    """The CUDA translation unit CuPy compiles for ``kernel`` with ``T = dtype``."""
    ck = nv["kernel"]
    ek = nv["cupy"].ElementwiseKernel(kernel.in_params, kernel.out_params, kernel.body, "tinyautograd_" + kernel.name)
    infos = []
    for p in ek.in_params + ek.out_params:
        dt = dtype if p.dtype is None else np.dtype(p.dtype)
        if p.raw:
            infos.append(ck._ArgInfo(ARRAY, nv["cupy"].ndarray, dt, 3 if strided else 1, True, not strided))
        elif p.dtype is not None and not strided and p in ek.in_params:  # float64/int64 inputs: the scalars
            infos.append(ck._ArgInfo(SCALAR, nv["scalar"], dt, 0, True, True))
        else:
            infos.append(ck._ArgInfo(ARRAY, nv["cupy"].ndarray, dt, 2 if strided else 1, not strided, not strided))
    infos.append(ck._ArgInfo(INDEXER, nv["indexer"], None, 2 if strided else 1, True, not strided))
    code = ck._get_elementwise_kernel_code(tuple(infos), ck._TypeMap((("T", dtype),)), ek.params, ek.operation,
                                           ek.name, ek.preamble)
    return nv["header"] + code


def compile_kernel(nv, kernel: _kernels.Kernel, dtype: np.dtype, strided: bool) -> str:
    code = source(nv, kernel, dtype, strided)
    nv["program"](code, f"tinyautograd_{kernel.name}.cu").compile(nv["options"])
    return code


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(_kernels.REGISTRY))
def test_kernel_compiles_with_nvrtc(nvrtc, name, dtype) -> None:
    kernel = _kernels.REGISTRY[name]
    for strided in (False, True):
        code = compile_kernel(nvrtc, kernel, np.dtype(dtype), strided)
        assert f"tinyautograd_{name}(" in code and kernel.body in code


def test_nvrtc_rejects_what_cuda_lacks(nvrtc) -> None:
    # the check can fail: a body calling a host-only function, or with a syntax error, does not compile
    bad = _kernels.Kernel.__new__(_kernels.Kernel)
    bad.name, bad.in_params, bad.out_params = "nvrtc_canary", "T x, float64 a", "T y"
    for body in ("double v = x; y = (T)(std::isnan(v) ? a : v);", "y = x +;"):
        bad.body = body
        with pytest.raises(Exception, match="error"):
            compile_kernel(nvrtc, bad, np.dtype(np.float32), False)
    bad.body = "double v = x; y = (T)(v * a);"
    compile_kernel(nvrtc, bad, np.dtype(np.float32), False)  # and the same kernel written right does


# -- the CuPy API the library calls -----------------------------------------------------------------------------

ROOTS = {"xp", "cp", "cupy", "cupyx"}  # the names the library gives CuPy (``xp``: the array module of a tensor)
UFUNC_KEYWORDS = {"out", "dtype", "casting"}  # what cupy.ufunc.__call__ takes besides arrays


def _chain(node) -> str | None:
    """``xp.lib.stride_tricks.as_strided`` for that attribute node, None when not rooted at CuPy: a name in
    ``ROOTS``, an ``xp_of(array)`` call, or an ``xp`` attribute (``ns.xp``, ``self.xp``)."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name) and node.id in ROOTS:
        return ".".join([node.id] + parts[::-1])
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "xp_of" and parts:
        return ".".join(["xp"] + parts[::-1])
    if isinstance(node, ast.Name) and len(parts) > 1 and parts[-1] == "xp":
        return ".".join(["xp"] + parts[-2::-1])
    return None


def _library_source():
    root = pathlib.Path(tinyautograd.__file__).parent
    for path in sorted(root.rglob("*.py")):
        yield path.relative_to(root.parent), ast.parse(path.read_text(encoding="utf-8"))


def _parameters(fn) -> set[str] | None:
    """The keyword names ``fn`` accepts (None: any, or unknown), from its signature or, where that has none or only
    ``**kwargs``, from the one written in the first line of its docstring (Cython's, NumPy's methods')."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        params = None
    if params is not None and not any(p.kind is p.VAR_KEYWORD for p in params):
        return {p.name for p in params}
    first = (getattr(fn, "__doc__", None) or "").strip().split("\n")[0]
    if "(" not in first or "**" in first:
        return None
    return set(re.findall(r"(\w+)\s*(?:=|,|\))", first.split("(", 1)[1]))


def api_problems(cupy, cupyx, sources) -> tuple[list[str], int]:
    """Calls in ``sources`` (``(path, ast)`` pairs) that CuPy cannot take, and how many CuPy names were read."""
    problems, seen = [], 0
    for path, tree in sources:
        for node in ast.walk(tree):
            chain = _chain(node) if isinstance(node, ast.Attribute) else None
            if chain is not None:
                seen += 1
                obj = cupyx if chain.startswith("cupyx") else cupy
                for name in chain.split(".")[1:]:
                    if not hasattr(obj, name):
                        problems.append(f"{path}:{node.lineno}: {chain}: CuPy {cupy.__version__} has no {name!r}")
                        break
                    obj = getattr(obj, name)
            if not (isinstance(node, ast.Call) and node.keywords):
                continue
            keywords = {k.arg for k in node.keywords if k.arg}
            call = _chain(node.func) if isinstance(node.func, ast.Attribute) else None
            if call is not None:  # xp.fn(..., kw=...)
                obj = cupyx if call.startswith("cupyx") else cupy
                try:
                    for name in call.split(".")[1:]:
                        obj = getattr(obj, name)
                except AttributeError:
                    continue  # reported above
                accepted = UFUNC_KEYWORDS if isinstance(obj, cupy.ufunc) else _parameters(obj)
                bad = keywords - accepted if accepted is not None else set()
                problems += [f"{path}:{node.lineno}: {call}({k}=...): not a parameter in CuPy" for k in sorted(bad)]
            elif isinstance(node.func, ast.Attribute) and hasattr(cupy.ndarray, node.func.attr):
                # array.method(..., kw=...): a keyword NumPy's method takes and CuPy's does not (other objects'
                # methods of the same name, json.dumps or list.sort, take keywords neither array has)
                name = node.func.attr
                theirs, ours = _parameters(getattr(np.ndarray, name, None)), _parameters(getattr(cupy.ndarray, name))
                if theirs is not None and ours is not None:
                    for k in sorted((keywords & theirs) - ours):
                        problems.append(f"{path}:{node.lineno}: ndarray.{name}({k}=...): NumPy takes it, CuPy not")
    return problems, seen


@pytest.fixture(scope="module")
def cupy_modules():
    def load():
        import cupy
        import cupyx
        import cupyx.scipy.special  # noqa: F401

        return cupy, cupyx
    return _need("the CuPy API", load)


def test_the_cupy_api_the_library_calls_exists_in_cupy(cupy_modules) -> None:
    problems, seen = api_problems(*cupy_modules, _library_source())
    assert seen > 150, f"only {seen} CuPy names found: has the library renamed its array module variable?"
    assert not problems, "\n".join(problems)


def test_the_api_check_can_fail(cupy_modules) -> None:
    snippet = ("y = xp_of(a).fromregex(f, r, d) + ns.xp.fromregex(f, r, d)\n"  # NumPy has it, CuPy not
               "z = xp.broadcast_to(a, s, subok=True)\n"  # a NumPy keyword
               "m = a.max(axis=0, where=mask)\n"  # an array method's NumPy keyword
               "xp.add(a, b, order='C')\n"  # a ufunc keyword CuPy's ufuncs lack
               "ok = xp.broadcast_to(a, s) + a.max(axis=0) + json.dumps(d, allow_nan=False)\n")
    problems, seen = api_problems(*cupy_modules, [("snippet.py", ast.parse(snippet))])
    assert seen == 5
    assert sorted(p.split(": ")[1] for p in problems) == ["ndarray.max(where=...)", "xp.add(order=...)",
                                                            "xp.broadcast_to(subok=...)", "xp.fromregex",
                                                            "xp.fromregex"], problems
