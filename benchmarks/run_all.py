"""Run every benchmark script in sequence (what ``make bench`` does).

  python benchmarks/run_all.py              # each script with its own defaults
  python benchmarks/run_all.py --quick      # a fast smoke run of everything
  python benchmarks/run_all.py --threads 2  # the same thread count for every script

Each script runs in its own process (thread settings are fixed when numpy is imported).
A script that fails does not stop the others; the exit status says whether all passed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = ("bench_engine.py", "bench_training.py", "bench_web.py")


def main() -> int:
    description, _, epilog = __doc__.strip().partition("\n\n")
    parser = argparse.ArgumentParser(
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--threads", type=int, help="passed on to every script")
    parser.add_argument("--quick", action="store_true", help="passed on to every script")
    args = parser.parse_args()
    passed_on = []
    if args.threads is not None:
        passed_on += ["--threads", str(args.threads)]
    if args.quick:
        passed_on.append("--quick")

    failed = []
    for script in SCRIPTS:
        print(f"\n######## {script} {' '.join(passed_on)}".rstrip(), flush=True)
        start = time.perf_counter()
        code = subprocess.run([sys.executable, str(HERE / script), *passed_on]).returncode
        elapsed = time.perf_counter() - start
        print(f"######## {script}: exit {code} after {elapsed:.0f} s", flush=True)
        if code != 0:
            failed.append(script)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
        return 1
    print(f"\nall {len(SCRIPTS)} benchmark scripts ran")
    return 0


if __name__ == "__main__":
    sys.exit(main())
