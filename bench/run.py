"""Run every benchmark (each in its own process, so one cannot skew the other's memory or imports).

.venv/bin/python bench/run.py [--runs 7] [--events 2000]      # or: make bench
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent


def run_bench(script: str, *args: str) -> dict[str, Any]:
    """Run one bench script, echo its output as it comes, return its final JSON summary line."""
    command = [sys.executable, str(BENCH / script), *args]
    print(f"\n=== {script} {' '.join(args)}".rstrip(), flush=True)
    lines: list[str] = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, bufsize=1) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            print(line, end="", flush=True)
            lines.append(line)
    if proc.returncode != 0:
        raise SystemExit(f"{script} failed with exit code {proc.returncode}")
    for line in reversed(lines):
        if line.startswith("{"):
            return json.loads(line)
    raise SystemExit(f"{script} printed no JSON summary")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the cold-start and throughput benchmarks.")
    parser.add_argument("--runs", type=int, default=7, help="cold starts per function (default 7)")
    parser.add_argument(
        "--events", type=int, default=2000, help="events per throughput variant (default 2000)"
    )
    args = parser.parse_args(argv)

    started = time.perf_counter()
    cold = run_bench("cold_start.py", "--runs", str(args.runs))
    throughput = run_bench("throughput.py", "--events", str(args.events))
    elapsed = time.perf_counter() - started

    print("\n=== summary")
    print(
        f"cold start: hello {cold['hello_median_ms']:.0f} ms, relay {cold['relay_median_ms']:.0f} ms "
        f"(median to first answer); relay/hello = {cold['ratio']:.2f} "
        f"[target <= {cold['target_ratio']}: {'OK' if cold['ratio_ok'] else 'OVER'}]"
    )
    print(f"            the relay's first request imports: {', '.join(cold['first_request_imports'])}")
    rates = throughput["events_per_s"]
    verdict = "OK" if throughput["throughput_ok"] else "BELOW"
    print(
        f"throughput: full {rates['full']:.0f} events/s, floor {rates['floor']:.0f} events/s "
        f"(full/floor {throughput['full_vs_floor']:.2f}) "
        f"[target >= {throughput['target_events_per_s']:.0f}: {verdict}]"
    )
    print(
        f"memory:     max RSS {throughput['max_rss_mib']:.1f} MiB "
        f"[target < {throughput['target_mib']:.0f}: {'OK' if throughput['memory_ok'] else 'OVER'}]"
    )
    print(f"total bench time {elapsed:.0f} s")
    print(json.dumps({"cold_start": cold, "throughput": throughput}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
