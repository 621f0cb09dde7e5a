"""Load on the playground's server: many tabs stepping the seed's example at once.

  python benchmarks/bench_web.py                  # 50 sessions for 30 s
  python benchmarks/bench_web.py --quick          # 10 sessions for 3 s
  python benchmarks/bench_web.py --sessions 20 --seconds 10

Starts ``chainrule serve`` on a free port of 127.0.0.1 (loopback only) in its own
process, opens one session per simulated tab, and has each tab press Step in a loop
(POST /api/sessions/ID/step, one step each; Reset when the run is over) until the time is
up. A tab presses at most every ``--interval`` seconds (default 0.1: the page's Run loop
asks for a step, redraws and pauses); ``--interval 0`` is a closed loop with no pause,
which measures throughput (each step then waits behind the other tabs' steps).
Prints the median and p99 latency of a step, steps per second, and the errors (the
goal: none, and p99 under 50 ms on a 2-core machine). Every loop is bounded in time and
in requests; the server is stopped at the end.
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import statistics
import subprocess
import sys
import threading
import time

HOST = "127.0.0.1"  # loopback only: this benchmark never sends traffic elsewhere
MAX_REQUESTS_PER_TAB = 200_000  # a bound on top of the time limit
GOAL_P99_MS = 50.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def request(conn: http.client.HTTPConnection, method: str, path: str, body: dict | None = None):
    payload = json.dumps(body or {})
    conn.request(method, path, payload, {"Content-Type": "application/json"})
    response = conn.getresponse()
    data = json.loads(response.read())
    if response.status >= 400:
        raise RuntimeError(f"{method} {path}: {response.status} {data.get('error')}")
    return data


def tab(
    port: int, until: float, interval: float, latencies: list[float], errors: list[str]
) -> None:
    """One browser tab: open a session, then Step (and Reset at the end of a run)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        session = request(conn, "POST", "/api/sessions", {"scenario": "main-ideas"})["session"]
        for _ in range(MAX_REQUESTS_PER_TAB):
            if time.perf_counter() >= until:
                break
            start = time.perf_counter()
            result = request(conn, "POST", f"/api/sessions/{session}/step", {"steps": 1})
            latencies.append(time.perf_counter() - start)
            if result["done"]:
                request(conn, "POST", f"/api/sessions/{session}/reset")
            rest = interval - (time.perf_counter() - start)
            if rest > 0:
                time.sleep(rest)
    except Exception as exc:  # noqa: BLE001 (every failure is counted and printed)
        errors.append(str(exc))
    finally:
        conn.close()


def main() -> int:
    description, _, epilog = __doc__.strip().partition("\n\n")
    parser = argparse.ArgumentParser(
        description=description, epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between steps")
    parser.add_argument("--quick", action="store_true", help="10 sessions for 3 s")
    parser.add_argument("--threads", type=int, help="(ignored: run_all passes it to all)")
    args = parser.parse_args()
    sessions, seconds = (10, 3.0) if args.quick else (args.sessions, args.seconds)
    sessions, seconds = max(1, min(sessions, 200)), max(1.0, min(seconds, 600.0))

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
        latencies: list[float] = []
        errors: list[str] = []
        until = time.perf_counter() + seconds
        tabs = [
            threading.Thread(
                target=tab, args=(port, until, args.interval, latencies, errors), daemon=True
            )
            for _ in range(sessions)
        ]
        started = time.perf_counter()
        for t in tabs:
            t.start()
        for t in tabs:
            t.join(timeout=seconds + 30)
        elapsed = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(timeout=10)

    if not latencies:
        print(f"no step completed; errors: {errors[:3]}")
        return 1
    ms = sorted(x * 1000 for x in latencies)
    p99 = ms[min(len(ms) - 1, int(0.99 * len(ms)))]
    print(
        f"playground load: {sessions} sessions stepping main-ideas for {seconds:g} s "
        f"(a step every {args.interval:g} s at most) on {HOST}:{port}"
    )
    print(f"  steps           {len(ms):,}")
    print(f"  steps/s         {len(ms) / elapsed:,.0f}")
    print(f"  median latency  {statistics.median(ms):.1f} ms")
    print(f"  p99 latency     {p99:.1f} ms   (goal: under {GOAL_P99_MS:g} ms)")
    print(f"  errors          {len(errors)}" + (f"  first: {errors[0]}" if errors else ""))
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())
