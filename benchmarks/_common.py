"""Helpers shared by the benchmark scripts: thread settings, timing, tables, optional imports.

A script imports this module FIRST, parses its arguments and calls :func:`set_threads`
before it imports numpy (or chainrule, which imports numpy): the BLAS and OpenMP
libraries read their thread variables once, when they are loaded. Nothing here imports
numpy at module level for that reason.

Timing follows ``timeit``: each candidate is called ``number`` times in a run (``number``
chosen so that a run lasts at least ``min_time`` seconds), the run is repeated, and the
best run counts. The candidates' runs are interleaved (a, b, c, a, b, c, ...) so that a
slow moment of the machine hits them all alike. Unlike ``timeit``, the garbage collector
stays on: a real training loop runs with it on, and engines that build many Python
objects should pay for them here too.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

#: The variables that numpy's BLAS (OpenBLAS, MKL, Accelerate) and PyTorch read at import.
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)


class BenchmarkError(AssertionError):
    """An implementation computed the wrong result: its time would mean nothing."""


def check(ok: bool, message: str) -> None:
    """Stop the benchmark with ``message`` unless ``ok`` (not skipped under ``python -O``)."""
    if not ok:
        raise BenchmarkError(message)


# ---------------------------------------------------------------------------------------
# Arguments and threads
# ---------------------------------------------------------------------------------------


def all_cores() -> int:
    """The number of CPU cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def parser(doc: str | None, default_threads: int = 1) -> argparse.ArgumentParser:
    """An argument parser with the options every benchmark script has."""
    description, _, epilog = (doc or "").strip().partition("\n\n")
    p = argparse.ArgumentParser(
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--threads",
        type=int,
        default=default_threads,
        help=f"threads for numpy's BLAS and PyTorch alike (default {default_threads})",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="fewer and shorter repeats: a smoke run, the figures are noisier",
    )
    return p


def set_threads(n: int) -> None:
    """Give numpy's BLAS and PyTorch ``n`` threads; must run before numpy is imported."""
    if n < 1:
        raise SystemExit(f"--threads must be at least 1, got {n}")
    loaded = [name for name in ("numpy", "torch") if sys.modules.get(name) is not None]
    if loaded:
        raise RuntimeError(f"set_threads() must run before importing {', '.join(loaded)}")
    for name in THREAD_VARIABLES:
        os.environ[name] = str(n)


def import_torch(threads: int) -> Any:
    """PyTorch with ``threads`` intra-op threads, or None when it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return torch


def import_jax(threads: int) -> Any:
    """JAX with 64-bit floats on the CPU (one XLA thread when ``threads`` is 1), or None
    when it is not installed. A reference only: chainrule never needs it."""
    if threads == 1:
        flags = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flags}".strip()
    try:
        import jax
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_platforms", "cpu")
    return jax


def import_numba() -> Any:
    """numba, or None when it is not installed."""
    try:
        import numba
    except ImportError:
        return None
    return numba


def import_micrograd() -> Any:
    """micrograd's scalar ``Value`` class, or None when micrograd is not installed."""
    try:
        from micrograd.engine import Value
    except ImportError:
        return None
    return Value


def micrograd_softplus(x: Any) -> Any:
    """softplus(x) = ln(1 + e^x) as a micrograd node, written the way its own ops are.

    micrograd has no softplus; its derivative is the sigmoid.
    """
    value = max(x.data, 0.0) + math.log1p(math.exp(-abs(x.data)))  # stable for any x
    out = type(x)(value, (x,), "softplus")

    def _backward() -> None:
        z = math.exp(-abs(x.data))
        x.grad += out.grad * (1.0 / (1.0 + z) if x.data >= 0 else z / (1.0 + z))

    out._backward = _backward
    return out


def print_header(title: str, threads: int, torch: Any, micrograd: Any) -> None:
    """What was measured with what: versions, BLAS, thread settings."""
    import numpy as np

    print(f"== {title}")
    print(f"  machine: {platform.machine()}, {all_cores()} cores, {platform.system()}")
    print(f"  python {platform.python_version()}, numpy {np.__version__} ({_blas_name(np)})")
    if torch is None:
        print("  torch: not installed (pip install torch==2.13.0): its rows are skipped")
    else:
        print(f"  torch {torch.__version__}, torch.get_num_threads() = {torch.get_num_threads()}")
    if micrograd is None:
        print("  micrograd: not installed (pip install micrograd): its rows are skipped")
    else:
        print("  micrograd: installed")
    pools = _thread_pools()
    print(f"  threads: {threads} ({', '.join(f'{n}={os.environ[n]}' for n in THREAD_VARIABLES)})")
    if pools:
        print(f"  thread pools seen by threadpoolctl: {pools}")
    sys.stdout.flush()


def _blas_name(np: Any) -> str:
    try:
        config = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        return f"BLAS {blas['name']} {blas.get('version', '')}".strip()
    except Exception:  # older numpy: the name is only informative
        return "BLAS unknown"


def _thread_pools() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return ""
    seen = {}
    for pool in threadpool_info():
        seen.setdefault(pool.get("internal_api", "?"), pool.get("num_threads"))
    return ", ".join(f"{name} {n}" for name, n in sorted(seen.items()))


# ---------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------


@dataclass
class Timing:
    """The best of ``repeat`` runs of ``number`` calls: ``seconds`` per call; ``rounds``
    holds every run's seconds per call, in the order of the rounds."""

    seconds: float
    number: int
    repeat: int
    rounds: list[float] = field(default_factory=list)


#: The clock that :func:`compare` reads: wall time, unless a script on one thread asks
#: for the process's CPU time (:func:`use_cpu_clock`).
CLOCK: Callable[[], float] = time.perf_counter


def use_cpu_clock() -> None:
    """Time with the process's CPU time rather than the wall clock. For single-threaded
    runs on a machine shared with other work: the time this process spends waiting for a
    core is not counted (the caches that other work evicts still are)."""
    global CLOCK
    CLOCK = time.process_time


def _run(fn: Callable[[], object], number: int) -> float:
    clock = CLOCK
    start = clock()
    for _ in range(number):
        fn()
    return clock() - start


def _calibrate(fn: Callable[[], object], min_time: float) -> int:
    """Calls per run so that a run lasts at least ``min_time`` (timeit's autorange)."""
    number = 1
    while True:
        elapsed = _run(fn, number)
        if elapsed >= min_time:
            return number
        if elapsed <= 0:
            number *= 10
        else:
            number = max(number * 2, int(number * min_time / elapsed * 1.1) + 1)


def compare(
    candidates: dict[str, Callable[[], object]],
    repeat: int = 5,
    min_time: float = 0.2,
    number: int | None = None,
    warmup: bool = True,
) -> dict[str, Timing]:
    """Time each candidate: best of ``repeat`` interleaved runs of ``number`` calls each.

    With ``number`` None, each candidate gets its own number of calls per run (at least
    ``min_time`` seconds a run). Each candidate is first called once as a warm-up (caches,
    lazy imports, allocator pools) unless ``warmup`` is False.
    """
    numbers = {}
    for name, fn in candidates.items():
        if warmup:
            fn()
        numbers[name] = number if number is not None else _calibrate(fn, min_time)
    rounds: dict[str, list[float]] = {name: [] for name in candidates}
    names = list(candidates)
    for r in range(repeat):  # each round in another order: no one is always first
        for name in names[r % len(names) :] + names[: r % len(names)]:
            gc.collect()
            rounds[name].append(_run(candidates[name], numbers[name]) / numbers[name])
    return {
        name: Timing(min(rounds[name]), numbers[name], repeat, rounds[name]) for name in candidates
    }


def round_ratios(timings: dict[str, Timing], name: str, reference: str) -> list[float] | None:
    """The ratio ``name / reference`` in each round (runs close together in time), or None
    when either did not run."""
    a, b = timings.get(name), timings.get(reference)
    if a is None or b is None:
        return None
    return [x / y for x, y in zip(a.rounds, b.rounds, strict=True)]


def print_median_goal(
    text: str,
    ratios: list[float] | None,
    limit: float,
    missing: str = "",
) -> None:
    """A goal judged on the median of the per-round ratios, with their middle half:
    ``goal: <text> <= <limit>x: median 1.10x (middle half 1.05-1.20x, 9 rounds)  met``.
    On a machine shared with other work the median of ratios taken side by side is
    steadier than a ratio of two bests."""
    if not ratios:
        print(f"  goal: {text} <= {limit:g}x: not measured ({missing})")
        return
    ordered = sorted(ratios)
    median = statistics.median(ordered)
    low, high = _quartiles(ordered)
    verdict = "met" if median <= limit else "NOT met"
    print(
        f"  goal: {text} <= {limit:g}x: median {median:.2f}x (middle half {low:.2f}-"
        f"{high:.2f}x, {len(ordered)} rounds)  {verdict}"
    )


def _quartiles(ordered: list[float]) -> tuple[float, float]:
    if len(ordered) < 2:
        return ordered[0], ordered[0]
    q = statistics.quantiles(ordered, n=4, method="inclusive")
    return q[0], q[2]


# ---------------------------------------------------------------------------------------
# Tables and goals
# ---------------------------------------------------------------------------------------


def ratio(value: float | None, reference: float | None) -> str:
    if value is None or reference is None or reference <= 0:
        return "-"
    return f"{value / reference:.2f}x"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A plain aligned table: the first column left-aligned, the others right-aligned."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        parts = [str(cells[0]).ljust(widths[0])]
        parts += [str(c).rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  " + "   ".join(parts)

    print(line(headers))
    print("  " + "-" * (sum(widths) + 3 * (len(widths) - 1)))
    for row in rows:
        print(line(row))


def print_timings(
    title: str,
    timings: dict[str, Timing],
    references: Sequence[str],
    unit: str = "us/call",
    scale: float = 1e6,
    extra: dict[str, dict[str, str]] | None = None,
    skipped: dict[str, str] | None = None,
) -> None:
    """One row per implementation: time per call and its ratio to each reference.

    ``skipped`` lists implementations that did not run, with the reason. ``extra`` adds
    columns: {column title: {implementation: text}}.
    """
    print(f"\n-- {title}")
    extra = extra or {}
    skipped = skipped or {}
    timings = {**timings, **dict.fromkeys(skipped)}
    headers = ["implementation", unit, *(f"vs {r}" for r in references), *extra, "runs"]
    rows = []
    for name, t in timings.items():
        seconds = None if t is None else t.seconds
        cells = [name, "skipped" if t is None else _format_time(seconds * scale)]
        for ref in references:
            ref_t = timings.get(ref)
            cells.append(ratio(seconds, None if ref_t is None else ref_t.seconds))
        cells += [column.get(name, "-") for column in extra.values()]
        cells.append("-" if t is None else f"best of {t.repeat} x {t.number}")
        rows.append(cells)
    print_table(headers, rows)
    for name, why in skipped.items():
        print(f"  {name}: skipped ({why})")


def _format_time(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def print_goal(text: str, value: float | None, limit: float, missing: str = "") -> None:
    """``goal: <text> <= <limit>x: <value>x  met / NOT met`` (or why it was not measured)."""
    if value is None:
        print(f"  goal: {text} <= {limit:g}x: not measured ({missing})")
        return
    verdict = "met" if value <= limit else "NOT met"
    print(f"  goal: {text} <= {limit:g}x: {value:.2f}x  {verdict}")


def why_skipped(skipped: dict[str, str], *names: str) -> str:
    """Why a goal over ``names`` could not be measured: ``"torch: not installed"``."""
    return "; ".join(f"{name}: {skipped[name]}" for name in names if name in skipped)


def seconds_ratio(timings: dict[str, Timing], name: str, reference: str) -> float | None:
    a, b = timings.get(name), timings.get(reference)
    if a is None or b is None:
        return None
    return a.seconds / b.seconds


# ---------------------------------------------------------------------------------------
# Peak memory
# ---------------------------------------------------------------------------------------

RSS_MEANING = (
    "peak RSS: the most physical memory the whole process held during the run, minus what "
    "it held just before (after imports and data loading): numpy buffers, Python objects, "
    "the framework's own allocator caches and one-time set-up on first use (PyTorch pages "
    "in its kernels then), freed-but-kept heap pages; at this size it is coarse"
)
TRACED_MEANING = (
    "tracemalloc peak: the most memory allocated at once through Python's allocators during "
    "the run, numpy array buffers included (numpy reports them to tracemalloc); exact and "
    "free of allocator noise, but blind to PyTorch, which allocates outside Python"
)


def _proc_status() -> dict[str, int]:
    """The ``Vm*`` lines of /proc/self/status in KiB (empty where there is no /proc)."""
    try:
        with open("/proc/self/status") as f:
            lines = f.read().splitlines()
    except OSError:
        return {}
    found = {}
    for line in lines:
        key, _, rest = line.partition(":")
        if key.startswith("Vm") and rest.strip().endswith("kB"):
            found[key] = int(rest.split()[0])
    return found


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def peak_rss(fn: Callable[[], object]) -> tuple[int | None, str]:
    """Run ``fn``; return the peak RSS during it minus the RSS before it (bytes), and how.

    On Linux the kernel's peak mark VmHWM is reset first. ``ru_maxrss`` is only the
    fallback: it cannot be reset, and a child process inherits its parent's value across
    exec, so in a subprocess it often reports the PARENT's peak.
    """
    gc.collect()
    before = _proc_status().get("VmRSS")
    if before is not None and _reset_peak_rss():
        fn()
        return (_proc_status()["VmHWM"] - before) * 1024, "VmHWM (reset) - VmRSS before"
    try:
        import resource
    except ImportError:
        fn()
        return None, "unavailable on this platform"
    unit = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB elsewhere
    start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    fn()
    end = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return (end - start) * unit, "ru_maxrss after - before (0 if under an earlier peak)"


def peak_traced(fn: Callable[[], object]) -> int:
    """Run ``fn`` under tracemalloc; return its peak traced allocation in bytes."""
    import tracemalloc

    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        fn()
        return tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
