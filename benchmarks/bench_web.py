"""Load on the playground's server: many tabs running the seed's example at once.

  python benchmarks/bench_web.py                  # 50 tabs for 30 s
  python benchmarks/bench_web.py --quick          # 10 tabs for 3 s
  python benchmarks/bench_web.py --sessions 20 --seconds 10

Starts ``chainrule serve`` on a free port of 127.0.0.1 (loopback only) in its own
process, and plays ``--sessions`` browser tabs against it from this process: one asyncio
loop, plain HTTP/1.1 keep-alive connections (a new one only while a tab's others are
busy, as a browser opens them), so the client costs little CPU next to the server.

Each tab does what the page does (``web/static/app.js``):

- it opens the page at a moment drawn within the first ``--stagger`` seconds (1.5: about
  one cycle below, so that 50 tabs do not press their buttons in step), opens a session
  and draws the loss curve and the chain rule (GET scan, 41 points,
  and GET explain, side by side);
- it presses Run: one ``POST step {"steps": K, "fit": true}`` per frame, a frame every
  ``--frame-ms`` (100) at most, K = 1, 2, 3, ... up to 50; the loss curve and the chain
  rule again at most every ``--curve-ms`` (500) while running, and when the run stops
  (main-ideas stops after 10 steps: 4 frames);
- the learner reads the result for ``--think`` seconds (1), presses Reset (POST reset,
  then the loss curve and the chain rule again) and Run again, until the time is up.

Prints the median and p99 latency of a step request (the goal: p99 under 50 ms on a
2-core machine) and of the other requests, steps and requests per second, the CPU used by
the server and by this client, and the errors (the goal: none). Every loop is bounded in
time and in requests; the server is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from collections import defaultdict

HOST = "127.0.0.1"  # loopback only: this benchmark never sends traffic elsewhere
MAX_REQUESTS_PER_TAB = 200_000  # a bound on top of the time limit
GOAL_P99_MS = 50.0
SCAN = "scan?parameter=b3&from={a}&to={b}&num=41"  # what the page asks for b3


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def cpu_available(seconds: float = 0.5) -> float:
    """The share of one core that a busy process gets now (a spin loop's CPU time over
    its wall time): on a machine shared with other work the server gets no more."""
    start, cpu = time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        pass
    return (time.process_time() - cpu) / (time.perf_counter() - start)


def cpu_seconds(pid: int) -> float | None:
    """The CPU time (user + system) a process has used so far (Linux), else None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


class Tab:
    """One browser tab: its session, its open connections, and what it measured."""

    def __init__(self, port: int, record: dict[str, list[float]], errors: list[str]) -> None:
        self.port, self.record, self.errors = port, record, errors
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.opened: list[asyncio.StreamWriter] = []
        self.session = ""
        self.requests = 0
        self.drawing: set[asyncio.Task] = set()
        self.again, self.b3 = False, 0.0

    async def request(self, kind: str, method: str, path: str, body: dict | None = None):
        """One request on an idle connection (a new one if all are busy), timed. As a
        browser does, a request that meets a kept-alive connection the server has just
        closed (it closes idle ones after 5 s) is sent again on a new one."""
        self.requests += 1
        if self.requests > MAX_REQUESTS_PER_TAB:
            raise RuntimeError("too many requests")
        while self.idle:
            reader, writer = self.idle.pop()
            if not reader.at_eof():
                try:
                    return await self.send(reader, writer, kind, method, path, body)
                except (asyncio.IncompleteReadError, ConnectionResetError):
                    continue
        reader, writer = await asyncio.open_connection(HOST, self.port)
        self.opened.append(writer)
        return await self.send(reader, writer, kind, method, path, body)

    async def send(self, reader, writer, kind: str, method: str, path: str, body: dict | None):
        payload = json.dumps(body).encode() if body is not None else b""
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        )
        start = time.perf_counter()
        writer.write(head.encode() + payload)
        raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        lines = raw.decode("latin-1").split("\r\n")
        length = next(
            int(v)
            for k, _, v in (x.partition(":") for x in lines[1:])
            if k.lower() == "content-length"
        )
        data = json.loads(await asyncio.wait_for(reader.readexactly(length), 30))
        self.record[kind].append(time.perf_counter() - start)
        self.idle.append((reader, writer))
        status = int(lines[0].split()[1])
        if status >= 400:
            raise RuntimeError(f"{method} {path}: {status} {data.get('error')}")
        return data

    async def curve(self, b3: float) -> None:
        """The loss curve and the chain rule of b3, side by side (drawLossCurve)."""
        span = max(2.0, abs(b3))
        base = f"/api/sessions/{self.session}/"
        await asyncio.gather(
            self.request("scan", "GET", base + SCAN.format(a=b3 - span, b=b3 + span)),
            self.request("explain", "GET", base + "explain?parameter=b3"),
        )

    def draw_curve(self, b3: float) -> None:
        """Start drawing the curve; the page does not wait for it before the next frame.
        As the page does, one at a time: asked while one is out, it draws once more
        when that answer is in, at the values then."""
        self.b3 = b3
        if self.drawing:
            self.again = True
            return
        task = asyncio.ensure_future(self.curve(b3))
        self.drawing.add(task)
        task.add_done_callback(self.drawn)

    def drawn(self, task: asyncio.Task) -> None:
        self.drawing.discard(task)
        if not task.cancelled() and task.exception() is not None:
            error = task.exception()
            self.errors.append(f"{type(error).__name__}: {error}")
        if self.again:
            self.again = False
            self.draw_curve(self.b3)

    async def run(self, args: argparse.Namespace, until: float) -> None:
        """Run until the stop rule fires, frame by frame as the page's Run button does."""
        base = f"/api/sessions/{self.session}/"
        count, curve_at = 1, time.perf_counter()
        while time.perf_counter() < until:
            started = time.perf_counter()
            result = await self.request(
                "step", "POST", base + "step", {"steps": count, "fit": True}
            )
            b3 = next(p["value"] for p in result["parameters"] if p["name"] == "b3")
            if result["done"] or result["taken"] == 0:
                break
            if time.perf_counter() - curve_at >= args.curve_ms / 1000:
                curve_at = time.perf_counter()
                self.draw_curve(b3)
            count = min(50, count + 1)
            rest = args.frame_ms / 1000 - (time.perf_counter() - started)
            await asyncio.sleep(max(0.0, rest))
        self.draw_curve(b3)

    async def play(self, args: argparse.Namespace, until: float) -> None:
        state = await self.request("open", "POST", "/api/sessions", {"scenario": "main-ideas"})
        self.session = state["session"]
        self.draw_curve(0.0)
        while time.perf_counter() < until:
            await self.run(args, until)
            await asyncio.sleep(min(args.think, max(0.0, until - time.perf_counter())))
            if time.perf_counter() >= until:
                break
            await self.request("reset", "POST", f"/api/sessions/{self.session}/reset")
            self.draw_curve(0.0)
        while self.drawing:
            await asyncio.gather(*self.drawing, return_exceptions=True)

    def close(self) -> None:
        for writer in self.opened:
            writer.close()


async def load(port: int, args: argparse.Namespace, sessions: int, seconds: float):
    """Warm the server up with one tab's cycle, then play every tab for ``seconds``."""
    warm = Tab(port, defaultdict(list), [])
    await warm.play(argparse.Namespace(**{**vars(args), "think": 0.0}), time.perf_counter() + 1)
    warm.close()
    record: dict[str, list[float]] = defaultdict(list)
    errors: list[str] = []
    tabs = [Tab(port, record, errors) for _ in range(sessions)]
    until = time.perf_counter() + seconds

    async def play(tab: Tab, delay: float) -> None:
        try:
            await asyncio.sleep(delay)  # learners do not all open the page at one instant
            await tab.play(args, until)
        except Exception as exc:  # noqa: BLE001 (every failure is counted and printed)
            errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            while tab.drawing:
                await asyncio.gather(*tab.drawing, return_exceptions=True)
            tab.close()

    started = time.perf_counter()
    draw = random.Random(0)  # the same start times in every run
    starts = [draw.uniform(0, min(args.stagger, seconds / 2)) for _ in tabs]
    await asyncio.wait_for(asyncio.gather(*map(play, tabs, starts)), seconds + 60)
    return record, errors, time.perf_counter() - started, sum(len(t.opened) for t in tabs)


def percentile(ms: list[float], share: float) -> float:
    return ms[min(len(ms) - 1, int(share * len(ms)))]


def main() -> int:
    description, _, epilog = __doc__.strip().partition("\n\n")
    parser = argparse.ArgumentParser(
        description=description, epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--frame-ms", type=float, default=100.0, help="the Run loop's frame")
    parser.add_argument("--curve-ms", type=float, default=500.0, help="loss curve redraws")
    parser.add_argument("--think", type=float, default=1.0, help="seconds before Reset")
    parser.add_argument(
        "--stagger", type=float, default=1.5, help="tabs open within this many seconds"
    )
    parser.add_argument("--quick", action="store_true", help="10 sessions for 3 s")
    parser.add_argument("--threads", type=int, help="(ignored: run_all passes it to all)")
    args = parser.parse_args()
    sessions, seconds = (10, 3.0) if args.quick else (args.sessions, args.seconds)
    sessions, seconds = max(1, min(sessions, 200)), max(1.0, min(seconds, 600.0))

    available = cpu_available()
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "chainrule", "serve", "--port", str(port), "--host", HOST],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((HOST, port), timeout=0.5):
                    break
            except OSError:
                if server.poll() is not None:
                    print(server.stderr.read().decode(), file=sys.stderr)
                    return 1
                time.sleep(0.1)
        load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        server_cpu, client_cpu = cpu_seconds(server.pid), time.process_time()
        record, errors, elapsed, connections = asyncio.run(load(port, args, sessions, seconds))
        server_after = cpu_seconds(server.pid)
        client_used = time.process_time() - client_cpu
    finally:
        server.terminate()
        server.wait(timeout=10)

    steps = sorted(x * 1000 for x in record.get("step", []))
    if not steps:
        print(f"no step completed; errors: {errors[:3]}")
        return 1
    p99 = percentile(steps, 0.99)
    every = sorted(x * 1000 for kind in record.values() for x in kind)
    print(
        f"playground load: {sessions} tabs running main-ideas for {seconds:g} s on "
        f"{HOST}:{port} (opened within {args.stagger:g} s, a frame every {args.frame_ms:g} ms, "
        f"the loss curve every {args.curve_ms:g} ms while running, {args.think:g} s before "
        "Reset)"
    )
    if load_before is not None:
        print(f"  machine load    {load_before:.2f} (1-minute average before the run)")
    print(f"  CPU for one     {available:.0%} of a core (a busy loop, before the run)")
    print(f"  step requests   {len(steps):,}  ({len(steps) / elapsed:,.0f}/s)")
    print(f"  all requests    {len(every):,}  ({len(every) / elapsed:,.0f}/s)")
    print(f"  {'request':<10} {'count':>7} {'median ms':>10} {'p99 ms':>8}")
    for kind in ("step", "reset", "scan", "explain", "open"):
        ms = sorted(x * 1000 for x in record.get(kind, []))
        if ms:
            line = f"{statistics.median(ms):>10.1f} {percentile(ms, 0.99):>8.1f}"
            print(f"  {kind:<10} {len(ms):>7,} {line}")
    print(f"  every request   p99 {percentile(every, 0.99):.1f} ms")
    if server_cpu is not None and server_after is not None:
        used = server_after - server_cpu
        print(
            f"  server CPU      {used / elapsed:.0%} of one core, "
            f"{used * 1000 / len(every):.2f} ms per request"
        )
    print(f"  client CPU      {client_used / elapsed:.0%} of one core ({connections} connections)")
    print(f"  errors          {len(errors)}" + (f"  first: {errors[0]}" if errors else ""))
    met = "met" if p99 < GOAL_P99_MS else "NOT met"
    print(f"goal: p99 < {GOAL_P99_MS:g} ms  {met}  (step p99 {p99:.1f} ms)")
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())
