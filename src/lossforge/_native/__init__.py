"""Optional native kernels: small C functions, compiled on first use with the system's C compiler.

Some loops cannot be written fast with tensor operations: an elementwise loss evaluated by a chain of
ATen calls makes one pass over memory per call, where a compiled loop evaluates the whole formula in
registers in one pass (what ``torch.compile`` generates), and the lower envelope of a distance
transform is sequential along each line. For these lossforge ships plain C sources (no Python or torch
headers: each function takes raw pointers and sizes) and builds each source, the first time one of
its functions is needed, into a shared library that it loads with :mod:`ctypes` (``library("edt")``
is ``edt.c``: a source that cannot be built costs only its own kernels):

- the compiler is ``$CC`` or the first of ``cc``, ``gcc``, ``clang`` on the ``PATH`` (the one
  ``torch.compile`` also needs on the CPU); flags ``-O3 -march=native``, and glibc's vector math
  library (``libmvec``) where it links, so that ``expm1f``, ``log1pf`` ... are vectorised;
- each library is cached in ``$LOSSFORGE_CACHE_DIR`` (default ``~/.cache/lossforge``; the temporary
  directory's ``lossforge-cache`` where that is not writable), named by a hash
  of the sources, the compiler, the flags and the CPU, and written atomically (several processes may
  build it at once); later processes only load it (about a millisecond);
- ``ctypes`` releases the GIL during a call, so the callers run blocks of work on several threads.

Everything has a pure-torch path that gives the same values to rounding. ``LOSSFORGE_NATIVE=0``
turns the native kernels off; ``LOSSFORGE_NATIVE=1`` makes a failure to build one an error (CI sets
it, so that the tests exercise them); unset, a failure is silent and :func:`status` says why.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["NativeUnavailableError", "function", "library", "status"]

_BASE_FLAGS = ["-O3", "-std=c11", "-fPIC", "-shared", "-fno-math-errno", "-fno-trapping-math", "-fopenmp-simd"]
# tried in order: the first that compiles and links is used
_VARIANTS = (["-march=native", "-lmvec", "-lm"], ["-march=native", "-lm"], ["-lm"])

_LOCK = threading.Lock()
# module name -> (the library or None, what happened)
_LOADED: dict[str, tuple[ctypes.CDLL | None, str]] = {}
# (module, function) -> the ctypes function with its signature declared
_FUNCTIONS: dict[tuple[str, str], Callable[..., Any]] = {}


class NativeUnavailableError(RuntimeError):
    """Raised when ``LOSSFORGE_NATIVE=1`` and the native kernels cannot be built or loaded."""


def _mode() -> str:
    value = os.environ.get("LOSSFORGE_NATIVE", "").strip().lower()
    if value in ("0", "off", "false", "no"):
        return "off"
    if value in ("1", "on", "true", "yes", "require"):
        return "require"
    return "auto"


def _compiler() -> str | None:
    candidates = [os.environ["CC"]] if os.environ.get("CC") else ["cc", "gcc", "clang"]
    for name in candidates:
        path = shutil.which(name)
        if path:
            return path
    return None


def _cpu_identity() -> str:
    """What ``-march=native`` depends on: the CPU's model and feature flags where Linux lists them."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or platform.machine()
    wanted = ("model name", "flags", "Features", "CPU implementer", "CPU part")
    return "\n".join(sorted({line for line in lines if line.split(":")[0].strip() in wanted}))


def _cache_dir() -> Path:
    if os.environ.get("LOSSFORGE_CACHE_DIR"):
        return Path(os.environ["LOSSFORGE_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lossforge"


def _build(cc: str, module: str) -> tuple[ctypes.CDLL, str]:
    source = Path(__file__).with_name(f"{module}.c")
    digest = hashlib.sha256(source.read_bytes())
    stat = os.stat(cc)
    digest.update(f"{cc}|{stat.st_size}|{stat.st_mtime_ns}|{_BASE_FLAGS}|{_VARIANTS}|{sys.platform}|"
                  f"{platform.machine()}|{_cpu_identity()}".encode())
    name = f"lossforge-{module}-{digest.hexdigest()[:20]}.so"
    for cache in (_cache_dir(), Path(tempfile.gettempdir()) / "lossforge-cache"):
        target = cache / name
        if target.exists():
            try:
                return ctypes.CDLL(str(target)), f"loaded {target}"
            except OSError:  # not loadable here (a damaged or foreign file): build it again
                target.unlink(missing_ok=True)
        if _writable(cache):
            return _compile(cc, source, target)
    raise OSError(f"no writable cache directory ({_cache_dir()} or the temporary directory)")


def _writable(cache: Path) -> bool:
    """Whether a file can be created in ``cache`` (made if missing)."""
    try:
        cache.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=cache)
    except OSError:
        return False
    os.close(fd)
    os.unlink(probe)
    return True


def _compile(cc: str, source: Path, target: Path) -> tuple[ctypes.CDLL, str]:
    """Compile ``source`` into ``target`` with the first flag variant that works (atomically)."""
    cache = target.parent
    errors = []
    for variant in _VARIANTS:
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=cache)
        os.close(fd)
        cmd = [cc, *_BASE_FLAGS, "-o", tmp, str(source), *variant]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)  # noqa: S603
            if done.returncode == 0:
                os.replace(tmp, target)  # atomic: a concurrent build writes the same file
                return ctypes.CDLL(str(target)), f"built {target} ({' '.join(variant)})"
            errors.append(done.stderr.strip().splitlines()[-1:] or ["(no message)"])
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    raise OSError(f"{cc} failed: {errors}")


def library(module: str) -> ctypes.CDLL | None:
    """The native library built from ``<module>.c``, built or loaded on the first call; None where the
    native kernels are off or it cannot be built (:func:`status` says why)."""
    loaded = _LOADED.get(module)
    if loaded is None:
        with _LOCK:
            loaded = _LOADED.get(module)
            if loaded is None:
                loaded = _load(module)
                _LOADED[module] = loaded
    return loaded[0]


def function(module: str, name: str, restype: Any, argtypes: tuple[Any, ...]) -> Callable[..., Any] | None:
    """The C function ``name`` of ``library(module)`` with the given ``ctypes`` signature, or None where
    the library is unavailable."""
    fn = _FUNCTIONS.get((module, name))
    if fn is None:
        lib = library(module)
        if lib is None:
            return None
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, list(argtypes)
        _FUNCTIONS[(module, name)] = fn
    return fn


def _load(module: str) -> tuple[ctypes.CDLL | None, str]:
    mode = _mode()
    if mode == "off":
        return None, "off (LOSSFORGE_NATIVE=0)"
    cc = _compiler()
    if cc is None:
        lib, message = None, "no C compiler found ($CC, cc, gcc, clang)"
    else:
        try:
            lib, message = _build(cc, module)
        except (OSError, subprocess.SubprocessError) as err:
            lib, message = None, f"could not build {module}.c: {err}"
    if lib is None and mode == "require":
        raise NativeUnavailableError(f"LOSSFORGE_NATIVE=1 but {message}")
    return lib, message


def status() -> dict[str, str]:
    """For each native source, whether its kernels are in use, and where from or why not (building
    the ones not loaded yet)."""
    out = {}
    for source in sorted(Path(__file__).parent.glob("*.c")):
        try:
            lib = library(source.stem)
            out[source.stem] = f"{'on' if lib is not None else 'off'}: {_LOADED[source.stem][1]}"
        except NativeUnavailableError as err:
            out[source.stem] = f"off: {err}"
    return out


def _reset() -> None:
    """Forget the loaded libraries (tests: the next :func:`library` call looks again)."""
    with _LOCK:
        _LOADED.clear()
        _FUNCTIONS.clear()
