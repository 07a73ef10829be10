"""The one place that sets numba options for every kernel, and runs them on threads.

Every kernel is compiled once, as serial code over a range of independent
blocks of work (``kernel(..., b0, b1)`` runs blocks ``b0 .. b1 - 1``), and
released from the GIL (``nogil``).  :func:`run_blocks` runs it on several
threads of this process, each thread claiming the next few blocks until none
are left; the serial and parallel runs are the same machine code, so they give
the same bits, and there is no second (``parallel=True``) build to compile:
numba's parfor lowering of these kernels took twice as long as the serial build
itself.  numba's on-disk cache keeps the machine code so a second process
starts without recompiling.  Helpers called from kernels are compiled once
with the same options (LLVM may inline them).

No fastmath: flags such as 'reassoc' reorder sums (results would then
depend on the vector width of the machine) and 'nnan'/'ninf' would break the
NaN and infinity checks the kernels rely on.  Even 'contract' (FMA
formation by LLVM) is left off: where LLVM fuses would depend on the
machine.  The row kernels write their fused multiply-adds out instead
(:func:`fma`), which gives the same bits on every machine.

No IR rewrites (numba's ``no_rewrites``, :func:`_without_rewrites`) and no SSA form
(:func:`_pipeline`): the rewrites find nothing to change in these kernels, the SSA form
changes no result, and leaving both out shortens every compile.

In kernels and helpers, write ``max2(a, b)``/``min2(a, b)`` for ``max``/``min`` of two
numbers and ``len(x)`` for ``x.shape[0]``: the same instructions, without numba
compiling its overloads of them (per signature and per caller's options), about 5% of
the lockstep kernel's compile.

Where the compiled kernels are cached
-------------------------------------
Never beside the package: numba's default writes ``__pycache__/*.nbi``,
``*.nbc`` next to the module, inside an installed package that pip does not
own (a later ``pip install -e .`` then finds a stale ``mcscan`` folder in
site-packages).  The cache folder is, first match wins:

1. ``$MCSCAN_CACHE_DIR/<version>/numba/kernels-<digest>`` when ``MCSCAN_CACHE_DIR``
   is set;
2. ``$NUMBA_CACHE_DIR/kernels-<digest>`` (or under numba's ``cache_dir`` setting) when
   the user set it;
3. ``$XDG_CACHE_HOME/mcscan/<version>/numba/kernels-<digest>``, else
   ``~/.cache/mcscan/<version>/numba/kernels-<digest>`` (``%LOCALAPPDATA%`` on Windows),

where ``<version>`` is the mcscan version and ``<digest>`` (:data:`SOURCE_DIGEST`) the
first 16 hex digits of the SHA-256 of the sources of :mod:`mcscan.stats` (every
``.py`` file of the folder, in name order).  numba keys each cache entry on the
source file of the function it compiled and on numba's version, not on the files of
the helpers it calls: a kernel of ``toys.py`` would otherwise keep the machine code
of an older ``kernels.py`` helper, or of older options here, under an unchanged
version number (an editable install, a reinstall from the repository).  If that
folder cannot be created or written (a read-only home), kernels are compiled in every
process and not cached; one warning line says so.  numba's own setting
(``numba.config.CACHE_DIR``) is left as it is: the user's own cached functions follow
numba's rules.
"""
from __future__ import annotations

import contextlib
import logging
import operator
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

# numba colours the messages of the typing attempts it discards while compiling (each one
# through colorama): plain text compiles mcscan's kernels about 5% faster.  Only if numba
# is not imported yet (a NUMBA_ variable that appears later makes numba re-read all of
# them at the next compile), and the user's own setting wins.
if "numba" not in sys.modules:
    os.environ.setdefault("NUMBA_DISABLE_ERROR_MESSAGE_HIGHLIGHTING", "1")

import numba as nb  # noqa: E402
from numba.core import event as _event  # noqa: E402
from numba.extending import intrinsic  # noqa: E402

__all__ = ["BLAS_PROBE", "CACHE_DIR", "PREFER_VECTOR_WIDTH", "SOURCE_DIGEST", "Child", "StandIn",
           "bits_float", "build_in_child", "built", "cache_dir", "compile_clock", "float_bits",
           "fma", "fresh", "helper", "kernel", "max2", "min2", "prefetch_write", "run_blocks",
           "sources_digest", "threads", "wide_vectors"]


def _version() -> str:
    try:
        from .. import __version__
    except ImportError:  # pragma: no cover - package imported half-way
        return "unknown"
    return str(__version__)


def sources_digest(folder=None) -> str:
    """First 16 hex digits of the SHA-256 of the ``.py`` files of ``folder`` (default:
    this package, :mod:`mcscan.stats`) in name order, names and contents."""
    import hashlib

    h = hashlib.sha256()
    for path in sorted(Path(folder or Path(__file__).parent).glob("*.py")):
        h.update(path.name.encode() + b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:16]


#: :func:`sources_digest` of this package: the last part of the cache folder's name.
SOURCE_DIGEST = sources_digest()


def cache_dir(environ=None) -> Path | None:
    """The folder numba should cache mcscan's kernels in (see the module docstring).

    Reads ``environ`` (default ``os.environ``); ``None`` when no home or
    cache folder is known.  The folder is not created here.
    """
    env = os.environ if environ is None else environ
    version = _version()
    kernels = f"kernels-{SOURCE_DIGEST}"
    if env.get("MCSCAN_CACHE_DIR"):
        return Path(env["MCSCAN_CACHE_DIR"]).expanduser() / version / "numba" / kernels
    user_numba = env.get("NUMBA_CACHE_DIR") if environ is not None else nb.config.CACHE_DIR
    if user_numba:
        return Path(user_numba).expanduser() / kernels
    if env.get("XDG_CACHE_HOME"):
        root = Path(env["XDG_CACHE_HOME"])
    elif sys.platform == "win32" and env.get("LOCALAPPDATA"):
        root = Path(env["LOCALAPPDATA"])
    elif env.get("HOME"):
        root = Path(env["HOME"]) / ".cache"
    else:
        try:
            root = Path.home() / ".cache"
        except (RuntimeError, KeyError):
            return None
    return root / "mcscan" / version / "numba" / kernels


def _writable(path: Path | None) -> bool:
    """Create ``path`` if needed and check a file can be written in it."""
    if path is None:
        return False
    try:
        path.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
    except OSError:
        return False
    return True


def _setup_cache() -> Path | None:
    """:func:`cache_dir`, created; ``None`` (no caching) if it is not writable."""
    path = cache_dir()
    if not _writable(path):
        logging.getLogger("mcscan").warning(
            "mcscan: warning: cache folder %s is not writable (set MCSCAN_CACHE_DIR); "
            "kernels are compiled in every run", path if path is not None else "(no home folder)")
        return None
    return path


#: The folder the compiled kernels are cached in (``None``: not cached).
CACHE_DIR = _setup_cache()


def _without_rewrites() -> dict:
    """``{"no_rewrites": True}`` where numba takes that option, else ``{}``.

    numba rewrites its IR before and after typing: constant folding of a few patterns,
    pruning of branches on constants, fusion of whole-array expressions.  mcscan's
    kernels are loops over scalars and array elements, where these rewrites find nothing
    to change: without them the kernels compile about 5% faster (0.3 s of about 5.6 s for
    every kernel), their instructions are the same but for the order of a few loads of
    constants' addresses, and every result has the same bits."""
    try:
        from numba.core.cpu import CPUTargetOptions
    except ImportError:  # pragma: no cover - numba's layout changed
        return {}
    return {"no_rewrites": True} if hasattr(CPUTargetOptions, "no_rewrites") else {}


def _pipeline() -> dict:
    """``{"pipeline_class": ...}``: numba's compiler, less two costs that change no
    result of these kernels, where numba has the flags it takes (else ``{}``).

    * No SSA form.  numba rewrites every function into SSA form before typing (one name
      per assignment) and strips its phi nodes again before lowering.  mcscan's kernels
      give each variable one type throughout, so typing needs no SSA, and LLVM builds
      its own from the variables' stack slots.  Without it every kernel compiles with
      6.5% fewer instructions (valgrind, all kernels in one process: 35.2 G against
      37.7 G).  The lockstep row kernel's machine code is the same but for the symbols'
      names; in the point kernel and the toys' row kernel a few blocks take other
      registers and stack slots; every result has the same bits (no operation moves).
    * The compile's flags hashed once.  numba hashes them at every typing attempt of an
      overloaded function (about 8,000 for the lockstep row kernel), each time from the
      value of every option: 2.2% of that kernel's compile (28.3 G against 27.7 G
      instructions).  numba's hash is that of the options' names, so it cannot go
      stale."""
    try:
        from numba.core.compiler import Compiler, Flags
    except ImportError:  # pragma: no cover - numba's layout changed
        return {}
    if not hasattr(Flags, "enable_ssa"):  # pragma: no cover - numba's layout changed
        return {}

    class HashedOnce(Flags):
        __slots__ = ("_hash",)

        def __hash__(self):
            try:
                return self._hash
            except AttributeError:
                self._hash = super().__hash__()
                return self._hash

    class KernelCompiler(Compiler):
        flags_class = HashedOnce

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            # a copy of this compile's flags, set before the compile publishes its own
            # copy of them (of the same class) to the functions it types
            flags = HashedOnce(self.state.flags)
            flags.enable_ssa = False
            self.state.flags = flags

    return {"pipeline_class": KernelCompiler}


_OPTIONS = dict(cache=CACHE_DIR is not None, error_model="numpy", nogil=True, fastmath=False,
                **_without_rewrites(), **_pipeline())
_DECORATE_LOCK = threading.Lock()


def _njit(func, **options):
    """``numba.njit`` with mcscan's options, cached in :data:`CACHE_DIR`.

    numba fixes the folder of a function's cache when the function is decorated,
    from ``numba.config.CACHE_DIR``: it is set to mcscan's folder for the decoration
    only.  Set for good, the user's own cached functions would land there too, and
    numba resets it whenever it re-reads its NUMBA_ environment variables (at the
    next compile after one of them changed), so a module decorated later (the toy
    kernels, say) would cache beside mcscan's sources."""
    if CACHE_DIR is None:
        return nb.njit(**_OPTIONS, **options)(func)
    with _DECORATE_LOCK:
        old = nb.config.CACHE_DIR
        nb.config.CACHE_DIR = str(CACHE_DIR)
        try:
            return nb.njit(**_OPTIONS, **options)(func)
        finally:
            nb.config.CACHE_DIR = old


def kernel(func):
    """Compile ``func``, a kernel whose last two arguments ``b0, b1`` name the range of
    blocks it runs (see :func:`run_blocks`); one serial, GIL-free build."""
    return _njit(func, no_cfunc_wrapper=True)


def built(dispatcher) -> bool:
    """Whether a call of ``dispatcher`` (a kernel compiled by this module) compiles
    nothing: it has a build in this process, or the cache folder holds one for this
    CPU (a new process loads it in about 0.25 s).  It reads numba's index of the
    cache (a private part of numba, laid out as in numba 0.68), no machine code.
    ``True`` where that index cannot be read so: a caller then does what it would do
    without asking."""
    if dispatcher.signatures:
        return True
    if CACHE_DIR is None:
        return False
    try:
        magic = dispatcher.targetctx.codegen().magic_tuple()
        # keys (signature, (target triple, CPU, CPU features), code hashes); {} if the
        # index is missing, stale or of another numba
        index = dispatcher._cache._cache_file._load_index()
        return any(key[1] == magic for key in index)
    except Exception:  # noqa: BLE001 - numba's private cache layout changed
        return True


class StandIn:
    """A budget of work that a process runs on a kernel quicker to compile while
    ``kernel`` (a dispatcher) is not built (:func:`built`): calls of at most ``budget()``
    points in all, counted over calls and threads.  The caller runs a kernel that gives
    the same bits, so results do not depend on it; ``budget`` is read at every call
    (a module's constant, which tests may change)."""

    def __init__(self, kernel, budget):
        self.kernel = kernel
        self.budget = budget
        self.points = 0
        self._lock = threading.Lock()

    def take(self, npoints) -> bool:
        """Whether a call of ``npoints`` points runs on the stand-in: ``kernel`` is not
        built and the budget holds them (then counted).  A call beyond the budget
        compiles (or loads) ``kernel``, and every later call uses it."""
        if built(self.kernel):
            return False
        with self._lock:
            if self.points + npoints > self.budget():
                return False
            self.points += npoints
            return True

    def plan(self, npoints) -> None:
        """Announce a job of ``npoints`` points: one larger than the budget spends it, so
        that its first call compiles (or loads) ``kernel`` at once."""
        if int(npoints) > self.budget():
            with self._lock:
                self.points = self.budget()


#: The module numba's first compile imports to learn whether BLAS is there
#: (``numba.np.linalg.ensure_blas``); a child of :func:`build_in_child` blocks it.
BLAS_PROBE = "scipy.linalg.cython_blas"


def build_in_child(statement: str, timeout: float = 600.0) -> "Child | None":
    """Run ``statement`` (Python that compiles kernels of this package) in a new Python
    process sharing this one's cache folder (:data:`CACHE_DIR`), while this process goes
    on: numba compiles one function at a time in a process (a global lock), so two
    processes build two kernels at once on two cores.  The child imports this copy of
    the package and computes its cache folder from the same environment; it builds
    nothing unless that folder is :data:`CACHE_DIR`, and it cannot import
    :data:`BLAS_PROBE` (``statement`` must not need BLAS).  ``None`` (build here) where
    the kernels are not cached on disk or no process can be started."""
    if CACHE_DIR is None or not sys.executable:
        return None
    import subprocess

    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    # numba's first compile in a process imports scipy.linalg (0.25 to 0.35 s) only to
    # learn whether np.dot may call BLAS (numba.np.arraymath): the child builds kernels
    # that call no BLAS, so it blocks that import (None in sys.modules), and numba takes
    # BLAS for missing there; every kernel's machine code is the same
    check = (f"import sys\nsys.modules[{BLAS_PROBE!r}] = None\n"
             f"from mcscan.stats._jit import CACHE_DIR\n"
             f"if str(CACHE_DIR) != {str(CACHE_DIR)!r}:\n    raise SystemExit(2)\n")
    # the child does no linear algebra: no BLAS worker threads spinning beside two compiles
    env["OPENBLAS_NUM_THREADS"] = "1"
    # after the build, exit without tearing the interpreter down: its final garbage
    # collection over numba's and LLVM's objects took 0.4 to 0.8 s, all waited for by join
    done = "\nimport os as _os\n_os._exit(0)\n"
    try:
        proc = subprocess.Popen([sys.executable, "-c", check + statement + done], env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    except OSError:
        return None
    return Child(proc, timeout)


class Child:
    """A process started by :func:`build_in_child`."""

    def __init__(self, proc, timeout):
        self.proc = proc
        self.timeout = timeout

    def join(self) -> bool:
        """Wait for it (at most ``timeout`` seconds, then end it); whether it built
        everything (exit status 0).  Whatever it did not build, the caller builds."""
        import subprocess

        try:
            return self.proc.wait(self.timeout) == 0
        except subprocess.TimeoutExpired:
            self.stop()
            return False

    def stop(self) -> None:
        """End it now (this process stops, e.g. on Ctrl-C)."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def threads() -> int:
    """Threads a parallel run uses: numba's thread count of the calling thread
    (``numba.set_num_threads``, ``NUMBA_NUM_THREADS``)."""
    return max(1, int(nb.get_num_threads()))


_POOL_LOCK = threading.Lock()
_POOL = {"pid": None, "size": 0, "pool": None}


def _pool(size):
    """A pool of at least ``size`` worker threads in this process (made again after a fork)."""
    from concurrent.futures import ThreadPoolExecutor

    with _POOL_LOCK:
        if _POOL["pid"] != os.getpid() or _POOL["size"] < size:
            old = _POOL["pool"] if _POOL["pid"] == os.getpid() else None
            _POOL.update(pid=os.getpid(), size=size,
                         pool=ThreadPoolExecutor(max_workers=size, thread_name_prefix="mcscan-kernel"))
            if old is not None:
                old.shutdown(wait=False)
        return _POOL["pool"]


def run_blocks(f, args, nblk, *, parallel=True, grain=1, progress=None):
    """Run blocks ``0 .. nblk - 1`` of the kernel ``f``: ``f(*args, b0, b1)``.

    Serial: one call (one per ``grain`` blocks with ``progress``).  Parallel: up to
    :func:`threads` threads (the calling one included) claim blocks in order until none
    are left, so a thread on a busy core takes fewer.  A claim takes ``grain`` blocks,
    and fewer once the blocks left are under ``2 * grain`` per thread (half that share,
    down to one block): the threads then finish within about one block of each other
    instead of one claim.  Blocks are independent: the results do not depend on which
    thread ran which block.

    ``progress(b0, b1)``, if given, is told of every finished claim, on the calling
    thread only (after each of its own claims and at the end), in no fixed order.
    """
    nblk = int(nblk)
    grain = max(1, int(grain))
    n = min(threads(), nblk) if parallel else 1
    if n <= 1:
        step = grain if progress is not None else max(nblk, 1)
        for b0 in range(0, nblk, step):
            f(*args, b0, min(nblk, b0 + step))
            if progress is not None:
                progress(b0, min(nblk, b0 + step))
        return
    lock = threading.Lock()
    state = {"next": 0}
    finished = []
    stop = []

    def claim():
        with lock:
            b0 = state["next"]
            if b0 >= nblk or stop:
                return None
            b1 = b0 + max(1, min(grain, (nblk - b0) // (2 * n)))
            state["next"] = b1
            return b0, b1

    def report():
        while finished:
            progress(*finished.pop())       # list.pop is atomic under the GIL

    def work(caller=False):
        while (c := claim()) is not None:
            f(*args, *c)
            if progress is not None:
                finished.append(c)
                if caller:
                    report()

    futures = [_pool(n - 1).submit(work) for _ in range(n - 1)]
    try:
        work(caller=True)
    except BaseException:
        stop.append(True)                   # e.g. Ctrl-C: the other threads claim no more
        raise
    finally:
        for fut in futures:
            fut.result()
    if progress is not None:
        report()


class _LockClock(_event.Listener):
    """Adds up the wall time during which some thread of the process held numba's
    compiler lock or waited for it (numba's event ``"numba:compiler_lock"``): the
    lock is re-entrant and taken on several threads, so the clock runs from the first
    start to the matching last end."""

    def __init__(self):
        self.seconds = 0.0
        self._depth = 0
        self._since = 0.0
        self._mutex = threading.Lock()

    def on_start(self, event):
        with self._mutex:
            if self._depth == 0:
                self._since = time.perf_counter()
            self._depth += 1

    def on_end(self, event):
        with self._mutex:
            if self._depth == 0:
                return          # a compile that started before the clock did
            self._depth -= 1
            if self._depth == 0:
                self.seconds += time.perf_counter() - self._since


@contextlib.contextmanager
def compile_clock():
    """Time spent compiling or loading numba code while the block runs.

    Yields an object whose ``seconds`` is the wall time, in this process, during
    which numba compiled a function or loaded it from the cache (its compiler lock
    held or awaited, on any thread).  A kernel already in memory takes no such time,
    so a block that compiles nothing reads exactly 0.0.  A scan reports it apart, so
    that its rate in points per second is the kernels' and not numba's
    (:attr:`mcscan.scans.engine.ScanResult.points_per_second`).  Work sent to other
    processes (Dask workers) compiles there and is not seen."""
    clock = _LockClock()
    with _event.install_listener("numba:compiler_lock", clock):
        yield clock


def helper(func=None, *, inline=False):
    """Compile a scalar helper that kernels call; ``inline=True`` inlines it in numba IR.

    Without ``inline`` it is compiled once, without the wrappers that would make it
    callable from Python or C (the kernels call it directly, and LLVM may inline it):
    those wrappers were about a twentieth of the compile time of every kernel.

    ``inline=True`` is for helpers that LLVM leaves as calls (a loop over the lanes,
    :func:`mcscan.stats.kernels._add_series`) where a call costs in a hot loop: numba
    types and lowers the helper again at every call site.  A small straight-line
    helper is cheaper to compile without it, and LLVM inlines it all the same (the
    same machine code in the bin loops, ``scripts/mca.py``)."""

    def wrap(f):
        if inline:
            return _njit(f, inline="always")
        return _njit(f, inline="never", no_cpython_wrapper=True, no_cfunc_wrapper=True)
    return wrap if func is None else wrap(func)


#: Vector width (bits) LLVM should prefer in the functions that call :func:`wide_vectors`.
#: LLVM's tuning for Intel AVX-512 cores (skylake-avx512 ... sapphirerapids) prefers
#: 256 bits, which halves the lanes per instruction of the row kernel's bin loop there;
#: AMD Zen 4/5 already use 512.  Where AVX-512 is missing LLVM stays at what is legal.
#: Results do not depend on it (no sum is reordered by the vector width).
PREFER_VECTOR_WIDTH = 512


@intrinsic
def wide_vectors(typingctx):
    """Mark the LLVM function it is called from with ``"prefer-vector-width"`` =
    :data:`PREFER_VECTOR_WIDTH`.  Generates no code."""

    def codegen(context, builder, signature, args):
        # llvmlite's attribute set takes enum attributes; a string attribute added to
        # the set is printed verbatim into the function header.  Should a later
        # llvmlite refuse it, the kernel compiles with LLVM's default width.
        try:
            set.add(builder.function.attributes, f'"prefer-vector-width"="{PREFER_VECTOR_WIDTH}"')
        except (AttributeError, TypeError):
            pass
        return context.get_dummy_value()

    return nb.types.none(), codegen


def _bit_cast(name, src, dst):
    """An intrinsic ``name(x)``: the value of numba type ``dst`` with the bits of ``x``
    (type ``src``), a bit cast: no code of its own, and it vectorises."""

    def cast(typingctx, x):
        if x != src:
            return None

        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], context.get_value_type(dst))

        return dst(src), codegen

    cast.__name__ = cast.__qualname__ = name
    return intrinsic(cast)


#: ``float_bits(x)``: the 64 bits of the double ``x`` as an int64.
float_bits = _bit_cast("float_bits", nb.types.float64, nb.types.int64)
#: ``bits_float(i)``: the double whose 64 bits are the int64 ``i``.
bits_float = _bit_cast("bits_float", nb.types.int64, nb.types.float64)


@intrinsic
def fma(typingctx, x, y, z):
    """``x * y + z`` rounded once (LLVM's ``llvm.fma.f64``), in double precision.

    Written out where the row kernels want it, not left to LLVM's contraction
    (no fastmath, see above): the result is the correctly rounded one on every
    machine, so the bits do not depend on the CPU.  Cores with FMA units (x86-64
    since Haswell and Piledriver, 64-bit ARM) run it as one instruction,
    which on Intel AVX-512 cores halves the floating-point instructions of the
    row kernel's bin loop (two 512-bit pipes, no separate adder); elsewhere
    LLVM calls the C library's ``fma`` (slow, same bits).  Vectorises."""
    f64 = nb.types.float64
    if not all(isinstance(t, (nb.types.Float, nb.types.Integer)) for t in (x, y, z)):
        return None

    def codegen(context, builder, signature, args):
        return builder.fma(*args)

    return f64(f64, f64, f64), codegen


def _pick(name, op, doc):
    """An intrinsic ``name(a, b)`` of two numbers: ``b if op(b, a) else a`` in their
    common type, the instructions of numba's ``max(a, b)`` (``op`` >) or ``min(a, b)``
    (``op`` <), without the compile numba's overload takes for each signature and each
    caller's options (about 0.05 s each, a dozen in all)."""

    def pick(typingctx, a, b):
        if not all(isinstance(t, (nb.types.Integer, nb.types.Float)) for t in (a, b)):
            return None
        ty = typingctx.unify_types(a, b)
        if ty is None:
            return None

        def codegen(context, builder, signature, args):
            x = context.cast(builder, args[0], a, ty)
            y = context.cast(builder, args[1], b, ty)
            cmp = context.get_function(op, nb.core.typing.signature(nb.types.boolean, ty, ty))
            return builder.select(cmp(builder, (y, x)), y, x)

        return ty(a, b), codegen

    pick.__name__ = pick.__qualname__ = name
    pick.__doc__ = doc
    return intrinsic(pick)


#: ``max2(a, b)``: Python's ``max(a, b)`` for two numbers (``b if b > a else a``: a NaN
#: ``b`` gives ``a``), as numba compiles it.
max2 = _pick("max2", operator.gt, "Python's max(a, b) of two numbers: b if b > a else a.")
#: ``min2(a, b)``: Python's ``min(a, b)`` for two numbers (``b if b < a else a``).
min2 = _pick("min2", operator.lt, "Python's min(a, b) of two numbers: b if b < a else a.")


@intrinsic
def prefetch_write(typingctx, arr, index):
    """Ask the CPU to bring the cache line of ``arr[index]`` (a C-contiguous 1D array)
    into its caches, owned for writing (LLVM's ``llvm.prefetch``, write, high locality):
    a hint that changes no value; x86-64 prefetches do not fault on an unmapped address,
    and the kernel asks only for elements of the array.

    The lockstep row kernel stores each column's points into as many rows, a row apart
    in memory: each store misses the caches and first reads its line from memory.
    Asked for a few columns ahead, those lines are there when the stores come."""
    if not (isinstance(arr, nb.types.Array) and arr.ndim == 1 and isinstance(index, nb.types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        from llvmlite import ir
        from numba.core import cgutils
        a = context.make_array(signature.args[0])(context, builder, value=args[0])
        idx = context.cast(builder, args[1], signature.args[1], nb.types.intp)
        ptr = builder.bitcast(builder.gep(a.data, [idx]), ir.IntType(8).as_pointer())
        i32 = ir.IntType(32)
        # the name carries the pointer type: "p0" with LLVM's opaque pointers, else "p0i8"
        name = "llvm.prefetch.p0" if str(ptr.type) == "ptr" else "llvm.prefetch.p0i8"
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [ptr.type, i32, i32, i32]), name)
        builder.call(fn, [ptr, i32(1), i32(3), i32(1)])
        return context.get_dummy_value()

    return nb.types.none(arr, index), codegen


@intrinsic
def fresh(typingctx, x):
    """``x`` itself, a double, but as a value that LLVM cannot trace back to the load
    it came from (LLVM's ``freeze``, which changes no bit of a loaded value and
    generates no code).

    For a running maximum in memory, ``M[l] = max(M[l], v)``: LLVM sees that the
    store writes back what it loaded unless ``v`` is larger and turns it into a
    conditional store, which a vector loop runs as a masked store.  On AVX2 that
    is ``vmaskmovpd``, microcoded on AMD Zen 1 to 3 (the row kernel's series pass
    ran about a third slower on Zen 3 for it).  ``M[l] = max(fresh(M[l]), v)``
    keeps the store unconditional: one ``vmaxpd`` (whose rule, ``v`` where
    ``v > M[l]``, else ``M[l]``, is numba's ``max``) and a plain store, on every
    x86 machine.  The same bits as ``max(M[l], v)``."""
    if not isinstance(x, nb.types.Float):
        return None

    def codegen(context, builder, signature, args):
        from llvmlite import ir
        # llvmlite's builder has no freeze method; its generic instruction prints
        # "freeze double %x"
        ins = ir.instructions.Instruction(builder.block, args[0].type, "freeze", [args[0]])
        builder._insert(ins)
        return ins

    return x(x), codegen
