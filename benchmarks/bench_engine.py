"""Engine benchmarks: per-operation overhead, a large matmul, the seed's b3 descent.

Each figure is measured in this run next to the same computation written by hand in
numpy (the limit: no graph, no bookkeeping), PyTorch and micrograd when installed, all
with the same thread settings. Every section runs interleaved rounds (each implementation
once per round, in a rotating order) and reports the median time with its middle half;
each ratio is taken round by round (neighbours in time) and its median printed, so a busy
moment of a shared machine hits both sides of a ratio. chainrule also runs in float32.

  python benchmarks/bench_engine.py                  # all three sections
  python benchmarks/bench_engine.py --only descent   # one section
  python benchmarks/bench_engine.py --quick          # a fast smoke run

The large matmul uses every core (--matmul-threads); it runs in a child process, since the
BLAS thread count is fixed when numpy is imported.
"""

from __future__ import annotations

import functools
import gc
import math
import operator
import subprocess
import sys

import _common

SECTIONS = ("overhead", "matmul", "descent")

_parser = _common.parser(__doc__, default_threads=1)
_parser.add_argument(
    "--only", action="append", choices=SECTIONS, help="run only this section (repeatable)"
)
_parser.add_argument(
    "--matmul-threads",
    type=int,
    default=_common.all_cores(),
    help="threads for the large matmul (default: all cores)",
)
_parser.add_argument("--matmul-size", type=int, default=2048, help="matrix size (default 2048)")
_parser.add_argument(
    "--matmul-rounds",
    type=int,
    default=None,
    help="interleaved rounds of the large matmul, one call each (default 15, 3 with --quick)",
)
_parser.add_argument(
    "--rounds",
    type=int,
    default=None,
    help="interleaved rounds of the small sections (default 15, 3 with --quick)",
)
ARGS = _parser.parse_args()
_common.set_threads(ARGS.threads)

import numpy as np  # noqa: E402  (after set_threads, on purpose)

import chainrule as cr  # noqa: E402

torch = _common.import_torch(ARGS.threads)
Value = _common.import_micrograd()

ROUNDS = ARGS.rounds or (3 if ARGS.quick else 15)
MIN_TIME = 0.02 if ARGS.quick else 0.1


# ---------------------------------------------------------------------------------------
# 1. Per-op overhead: (a @ b).sum() forward and backward on 2x2 float64 matrices
# ---------------------------------------------------------------------------------------


def bench_overhead() -> None:
    rng = np.random.default_rng(0)
    a_np, b_np = rng.standard_normal((2, 2)), rng.standard_normal((2, 2))
    ones = np.ones((2, 2))
    expected = (ones @ b_np.T, a_np.T @ ones)

    def numpy_call():
        out = a_np @ b_np
        out.sum()
        g = np.ones_like(out)  # d sum / d out
        return g @ b_np.T, a_np.T @ g

    def chainrule_call_in(dtype):
        a = cr.Tensor(a_np.astype(dtype), requires_grad=True)
        b = cr.Tensor(b_np.astype(dtype), requires_grad=True)

        def chainrule_call():
            a.grad = b.grad = None
            (a @ b).sum().backward()
            return a.grad, b.grad

        return chainrule_call

    candidates = {
        "numpy": numpy_call,
        "chainrule": chainrule_call_in(np.float64),
        "chainrule float32": chainrule_call_in(np.float32),
    }
    if torch is not None:
        ta = torch.tensor(a_np, requires_grad=True)
        tb = torch.tensor(b_np, requires_grad=True)

        def torch_call():
            ta.grad = tb.grad = None
            (ta @ tb).sum().backward()
            return ta.grad.numpy(), tb.grad.numpy()

        candidates["torch"] = torch_call
    if Value is not None:
        ma = [[Value(float(v)) for v in row] for row in a_np]
        mb = [[Value(float(v)) for v in row] for row in b_np]
        leaves = [v for row in ma + mb for v in row]
        n = len(ma)

        def micrograd_call():
            for v in leaves:
                v.grad = 0
            # micrograd has only scalars: the matmul is written out entry by entry.
            out = [
                functools.reduce(operator.add, (ma[i][k] * mb[k][j] for k in range(n)))
                for i in range(n)
                for j in range(n)
            ]
            functools.reduce(operator.add, out).backward()
            grads_a = [[v.grad for v in row] for row in ma]
            return np.array(grads_a), np.array([[v.grad for v in row] for row in mb])

        candidates["micrograd"] = micrograd_call

    for name, fn in candidates.items():
        ga, gb = fn()
        rtol = 1e-6 if "float32" in name else 1e-12
        ok = np.allclose(ga, expected[0], rtol=rtol) and np.allclose(gb, expected[1], rtol=rtol)
        dtype = np.float32 if "float32" in name else np.float64
        ok = ok and np.asarray(ga).dtype == dtype and np.asarray(gb).dtype == dtype
        _common.check(ok, f"overhead: {name} computed wrong gradients for (a @ b).sum()")

    times = _interleaved_rounds(candidates, ROUNDS, MIN_TIME)
    _print_rounds(
        f"op overhead: (a @ b).sum() forward + backward, 2x2 float64 (and float32), "
        f"{ARGS.threads} thread(s)",
        times,
        references=["numpy", "torch", "micrograd"],
        unit="us/call",
        skipped=_skipped(),
    )
    _rounds_goal("chainrule per call vs hand-written numpy", times, "chainrule", "numpy", 2.0)
    _rounds_goal("chainrule per call vs PyTorch", times, "chainrule", "torch", 0.5)


# ---------------------------------------------------------------------------------------
# 2. A large matmul forward and backward, all cores
# ---------------------------------------------------------------------------------------


def bench_matmul() -> None:
    if ARGS.threads != ARGS.matmul_threads:
        # The BLAS thread count is fixed at import: measure in a child process.
        sys.stdout.flush()
        command = [
            sys.executable,
            __file__,
            "--only",
            "matmul",
            "--threads",
            str(ARGS.matmul_threads),
            "--matmul-threads",
            str(ARGS.matmul_threads),
            "--matmul-size",
            str(ARGS.matmul_size),
        ]
        if ARGS.matmul_rounds is not None:
            command += ["--matmul-rounds", str(ARGS.matmul_rounds)]
        if ARGS.quick:
            command.append("--quick")
        print(f"\n(the matmul runs in a child process with {ARGS.matmul_threads} thread(s))")
        sys.stdout.flush()
        subprocess.run(command, check=True)
        return
    for dtype in (np.float64, np.float32):
        _bench_matmul(ARGS.matmul_size, np.dtype(dtype))


def _bench_matmul(n: int, dtype: np.dtype) -> None:
    rng = np.random.default_rng(0)
    A, B, G = (rng.standard_normal((n, n)).astype(dtype) for _ in range(3))

    def numpy_call():
        # The limit: the three products any reverse-mode matmul must compute.
        return A @ B, G @ B.T, A.T @ G

    a = cr.Tensor(A, requires_grad=True)
    b = cr.Tensor(B, requires_grad=True)

    def chainrule_call():
        a.grad = b.grad = None
        out = a @ b
        out.backward(G)
        return out.data, a.grad, b.grad

    candidates = {"numpy": numpy_call, "chainrule": chainrule_call}
    if torch is not None:
        ta = torch.tensor(A, requires_grad=True)
        tb = torch.tensor(B, requires_grad=True)
        tg = torch.tensor(G)

        def torch_call():
            ta.grad = tb.grad = None
            out = ta @ tb
            out.backward(tg)
            return out.detach().numpy(), ta.grad.numpy(), tb.grad.numpy()

        candidates["torch"] = torch_call

    expected = numpy_call()
    rtol = 1e-10 if dtype == np.float64 else 1e-3
    for name, fn in candidates.items():
        got = fn()
        for what, x, y in zip(("out", "a.grad", "b.grad"), got, expected, strict=True):
            ok = x.dtype == dtype and np.allclose(x, y, rtol=rtol, atol=rtol * math.sqrt(n))
            _common.check(ok, f"matmul: {name} {what} is wrong ({x.dtype}, {dtype} expected)")
    del expected

    # A call takes a quarter to a whole second at 2048, so a run is one call, and one call
    # is at the mercy of the machine (the best of 5 once gave 1.29x, then 0.93x). Instead:
    # many rounds of one call each, interleaved, and the MEDIAN with its spread; the ratio
    # is taken within each round (neighbours in time), then its median.
    rounds = ARGS.matmul_rounds or (3 if ARGS.quick else 15)
    times = _interleaved_rounds(candidates, rounds)
    _print_rounds(
        f"matmul {n}x{n} {dtype.name}: out = a @ b; out.backward(G), "
        f"{ARGS.threads} thread(s); numpy = the three products a@b, G@b.T, a.T@G",
        times,
        references=["numpy", "torch"],
        unit="ms/call",
        flops=6 * n**3,
        skipped=_skipped(micrograd="a scalar engine: 2048^3 Value products are out of reach"),
    )
    _common.print_goal(
        f"chainrule {dtype.name} vs the three numpy matmuls (median of the rounds' ratios)",
        float(np.median(_paired_ratios(times, "chainrule", "numpy"))),
        1.1,
    )


def _interleaved_rounds(
    candidates: dict, rounds: int, min_time: float = 0.2
) -> dict[str, list[float]]:
    """Seconds per call of each candidate in each of ``rounds`` rounds.

    In a round every candidate runs once: one call at 2048 (a call takes longer than
    ``min_time``), enough calls for ``min_time`` at small sizes. Each candidate is called
    once first to warm up. The order rotates from round to round, so no candidate always
    runs right after the same one (whose threads may still spin).
    """
    numbers = {}
    for name, fn in candidates.items():
        fn()
        numbers[name] = _common._calibrate(fn, min_time)
    names = list(candidates)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            gc.collect()
            times[name].append(_common._run(candidates[name], numbers[name]) / numbers[name])
    return times


def _format(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _rounds_goal(
    text: str, times: dict[str, list[float]], name: str, reference: str, limit: float
) -> None:
    """A goal on the median of the rounds' ratios, with their middle half."""
    if reference not in times:
        _common.print_goal(text, None, limit, f"{reference} not installed")
        return
    q1, median, q3 = np.percentile(_paired_ratios(times, name, reference), [25, 50, 75])
    _common.print_goal(f"{text} (median of the rounds' ratios)", float(median), limit)
    print(f"        the rounds' middle half: {q1:.2f}x-{q3:.2f}x")


def _paired_ratios(times: dict[str, list[float]], name: str, reference: str) -> np.ndarray:
    """``name``'s time over ``reference``'s, round by round."""
    return np.array(times[name]) / np.array(times[reference])


def _print_rounds(
    title: str,
    times: dict[str, list[float]],
    references: list[str],
    unit: str,
    skipped: dict[str, str],
    flops: float | None = None,
    extra: dict[str, dict[str, str]] | None = None,
) -> None:
    """Median time per call (``unit``: ms/call, us/call or us/descent), its middle half
    (25th to 75th percentile), the median ratio to each reference over the rounds, the
    ``extra`` columns, and GFLOP/s at the median when ``flops`` is given."""
    print(f"\n-- {title}")
    rounds = len(next(iter(times.values())))
    scale = 1e3 if unit.startswith("ms") else 1e6
    extra = extra or {}
    headers = ["implementation", unit, "middle half", *(f"vs {r}" for r in references)]
    headers += [*extra, *(["GFLOP/s"] if flops else []), "runs"]
    rows = []
    for name, values in times.items():
        q1, median, q3 = np.percentile(np.array(values) * scale, [25, 50, 75])
        cells = [name, _format(median), f"{_format(q1)}-{_format(q3)}"]
        for ref in references:
            ratio = np.median(_paired_ratios(times, name, ref)) if ref in times else None
            cells.append("-" if ratio is None else f"{ratio:.2f}x")
        cells += [column.get(name, "-") for column in extra.values()]
        if flops:
            cells.append(f"{flops / np.median(values) / 1e9:.1f}")
        cells.append(f"median of {rounds}")
        rows.append(cells)
    for name in skipped:
        rows.append([name, "skipped", "-", *("-" for _ in references), *("-" for _ in extra)])
        rows[-1] += ["-"] * (len(headers) - len(rows[-1]))
    _common.print_table(headers, rows)
    for name, why in skipped.items():
        print(f"  {name}: skipped ({why})")
    for name in times:
        if name == "numpy":
            continue
        q = np.percentile(_paired_ratios(times, name, "numpy"), [0, 25, 50, 75, 100])
        print(
            f"  {name} / numpy, round by round: median {q[2]:.2f}x, middle half "
            f"{q[1]:.2f}x-{q[3]:.2f}x, all {q[0]:.2f}x-{q[4]:.2f}x ({rounds} rounds)"
        )
        if name == "chainrule" and q[3] - q[1] > 0.1:
            print(
                "  (the middle half of chainrule's ratios is wider than 0.1x: the machine was "
                "busy, so take the median loosely, or rerun with more --rounds or --matmul-rounds)"
            )


# ---------------------------------------------------------------------------------------
# 3. The seed's b3 descent, to convergence
# ---------------------------------------------------------------------------------------

DOSAGE = [0.0, 0.5, 1.0]
OBSERVED = [0.0, 1.0, 0.0]
W1, B1, W2, B2, W3, W4 = 3.34, -1.43, -3.53, 0.57, -1.22, -2.30
LEARNING_RATE = 0.1
TOLERANCE = 0.001  # stop after the first step with |step| below it
EXPECTED_B3 = 2.6089111372  # after 10 steps (StatQuest's example, recomputed in float64)
EXPECTED_STEPS = 10


def numpy_descent() -> tuple[float, int]:
    dosage, observed = np.array(DOSAGE), np.array(OBSERVED)
    b3, steps = 0.0, 0
    while True:
        predicted = (
            W3 * np.logaddexp(0.0, W1 * dosage + B1) + W4 * np.logaddexp(0.0, W2 * dosage + B2) + b3
        )
        slope = np.sum(-2.0 * (observed - predicted))  # dSSR/db3 = sum dSSR/dpredicted
        step = LEARNING_RATE * float(slope)
        b3 -= step
        steps += 1
        if abs(step) < TOLERANCE:
            return b3, steps


def chainrule_descent_in(dtype: str):
    """The chainrule descent with its data and b3 in ``dtype`` (float64 or float32)."""
    dosage, observed = cr.Tensor(DOSAGE, dtype=dtype), cr.Tensor(OBSERVED, dtype=dtype)

    def chainrule_descent() -> tuple[float, int]:
        b3 = cr.Tensor(0.0, requires_grad=True, name="b3", dtype=dtype)
        steps = 0
        while True:
            predicted = W3 * cr.softplus(W1 * dosage + B1) + W4 * cr.softplus(W2 * dosage + B2) + b3
            ssr = ((observed - predicted) ** 2).sum()
            ssr.backward()
            step = LEARNING_RATE * float(b3.grad)
            b3.data = b3.data - step  # the update works on the data: it is not recorded
            b3.grad = None
            steps += 1
            if abs(step) < TOLERANCE:
                assert b3.data.dtype == ssr.dtype == dtype  # no silent upcast
                return float(b3.data), steps

    return chainrule_descent


def torch_descent() -> tuple[float, int]:
    dosage, observed = _TORCH_DATA
    softplus = torch.nn.functional.softplus
    b3 = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
    steps = 0
    while True:
        predicted = W3 * softplus(W1 * dosage + B1) + W4 * softplus(W2 * dosage + B2) + b3
        ssr = ((observed - predicted) ** 2).sum()
        ssr.backward()
        step = LEARNING_RATE * b3.grad.item()
        with torch.no_grad():
            b3 -= step
        b3.grad = None
        steps += 1
        if abs(step) < TOLERANCE:
            return b3.item(), steps


if torch is not None:
    _TORCH_DATA = (
        torch.tensor(DOSAGE, dtype=torch.float64),
        torch.tensor(OBSERVED, dtype=torch.float64),
    )


def micrograd_descent() -> tuple[float, int]:
    # micrograd has no "requires_grad": the fixed parameters are Values like b3.
    w1, b1, w2, b2, w3, w4 = (Value(v) for v in (W1, B1, W2, B2, W3, W4))
    b3 = Value(0.0)
    steps = 0
    while True:
        ssr = Value(0.0)
        for dosage, observed in zip(DOSAGE, OBSERVED, strict=True):
            predicted = (
                w3 * _common.micrograd_softplus(w1 * dosage + b1)
                + w4 * _common.micrograd_softplus(w2 * dosage + b2)
                + b3
            )
            ssr = ssr + (observed - predicted) ** 2
        b3.grad = 0.0
        ssr.backward()
        step = LEARNING_RATE * b3.grad
        b3.data -= step
        steps += 1
        if abs(step) < TOLERANCE:
            return b3.data, steps


def bench_descent() -> None:
    candidates = {
        "numpy": numpy_descent,
        "chainrule": chainrule_descent_in("float64"),
        "chainrule float32": chainrule_descent_in("float32"),
    }
    if torch is not None:
        candidates["torch"] = torch_descent
    if Value is not None:
        candidates["micrograd"] = micrograd_descent
    for name, fn in candidates.items():
        b3, steps = fn()
        tolerance = 1e-5 if "float32" in name else 1e-9
        _common.check(
            steps == EXPECTED_STEPS and abs(b3 - EXPECTED_B3) < tolerance,
            f"descent: {name} ends at b3 = {b3!r} after {steps} steps; "
            f"expected {EXPECTED_B3} after {EXPECTED_STEPS}",
        )
    times = _interleaved_rounds(candidates, ROUNDS, MIN_TIME)
    per_step = {
        name: _format(float(np.median(values)) * 1e6 / EXPECTED_STEPS)
        for name, values in times.items()
    }
    _print_rounds(
        f"seed b3 descent: {EXPECTED_STEPS} steps to b3 = {EXPECTED_B3} (checked), "
        f"float64 (and float32), {ARGS.threads} thread(s)",
        times,
        references=["numpy", "torch", "micrograd"],
        unit="us/descent",
        extra={"us/step": per_step},
        skipped=_skipped(),
    )
    _rounds_goal("chainrule descent vs micrograd", times, "chainrule", "micrograd", 0.8)
    _rounds_goal("chainrule descent vs PyTorch", times, "chainrule", "torch", 0.5)


# ---------------------------------------------------------------------------------------


def _skipped(micrograd: str | None = None) -> dict[str, str]:
    """The implementations that did not run in a section, and why."""
    why = {}
    if torch is None:
        why["torch"] = "not installed"
    if Value is None:
        why["micrograd"] = "not installed"
    elif micrograd is not None:
        why["micrograd"] = micrograd
    return why


def main() -> None:
    sections = ARGS.only or list(SECTIONS)
    if sections != ["matmul"] or ARGS.threads == ARGS.matmul_threads:
        _common.print_header("chainrule engine benchmarks", ARGS.threads, torch, Value)
    for section in SECTIONS:
        if section in sections:
            {"overhead": bench_overhead, "matmul": bench_matmul, "descent": bench_descent}[
                section
            ]()
            sys.stdout.flush()


if __name__ == "__main__":
    try:
        main()
    except _common.BenchmarkError as exc:
        raise SystemExit(f"benchmark check failed: {exc}") from None
