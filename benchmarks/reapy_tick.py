"""What hostile clients cost REAPER's UI thread through the hardened reapy server: defer-tick times.

    python benchmarks/reapy_tick.py [--rounds 3] [--tick-ms 2]

Serves a hardened reapy server from a loop that plays REAPER's defer loop (one ``serve_once`` per tick, then a
pause of ``--tick-ms``; REAPER's own is ~33 ms), while another process runs every attack of
``tests/reaper_emulator/hostile_clients.py`` at once (slow header, a header announcing 100 bytes then silence,
short body, disconnect mid-request, deeply nested JSON, an oversize request, a wrong token, HOLD without RELEASE)
beside a good client calling every 10 ms. The attackers run in their own process so the ticks measured here do
not wait for their GIL. Prints, per round, the ticks' worst, 99th percentile and median wall time (what REAPER's
UI waits, including the OS's scheduling on a busy machine), the worst CPU time of a tick (the server's own work),
and the attacks' outcomes; exits 1 if an outcome differs from the expected one.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from extension.reapy_bridge import HardenedReapyServer, ServerLimits  # noqa: E402

TOKEN = "benchmark-token-0123456789abcdef"
CURSOR_SECONDS = 2.5
LIMITS = ServerLimits(request_deadline_seconds=0.5, hold_seconds=1.0, max_connections=16)


def one_round(tick_seconds: float) -> tuple[list[float], list[float], dict]:
    server = HardenedReapyServer(0, {"GetCursorPosition": lambda: CURSOR_SECONDS}, TOKEN, limits=LIMITS)
    report: dict = {}

    def run_attack() -> None:
        outcomes, answered = attack(server.port)
        report.update(outcomes=outcomes, answered=answered)

    attacker = threading.Thread(target=run_attack)
    ticks: list[float] = []
    cpu: list[float] = []
    attacker.start()
    try:
        while attacker.is_alive():
            started, started_cpu = time.perf_counter(), time.thread_time()
            server.serve_once()
            ticks.append(time.perf_counter() - started)
            cpu.append(time.thread_time() - started_cpu)
            time.sleep(tick_seconds)
    finally:
        attacker.join()
        server.close()
    report["stats"] = {"dropped": server.stats.dropped, "holds_cut": server.stats.holds_cut}
    return ticks, cpu, report


def attack(port: int) -> tuple[dict[str, str], list]:
    from reaper_emulator.hostile_clients import run_in_subprocess

    return run_in_subprocess(port, TOKEN, LIMITS)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tick-ms", type=float, default=2.0)
    args = parser.parse_args()
    from reaper_emulator.hostile_clients import expected_outcomes

    ok = True
    for n in range(1, args.rounds + 1):
        ticks, cpu, report = one_round(args.tick_ms / 1000)
        ordered = sorted(ticks)
        worst, p99, median = ordered[-1], ordered[int(0.99 * (len(ordered) - 1))], ordered[len(ordered) // 2]
        answered = report.get("answered") or []
        good = report.get("outcomes") == expected_outcomes(CURSOR_SECONDS) and set(answered) == {CURSOR_SECONDS}
        ok = ok and good
        print(
            f"round {n}: {len(ticks)} ticks, worst {worst * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms, "
            f"median {median * 1000:.3f} ms (wall); worst {max(cpu) * 1000:.2f} ms CPU; "
            f"good client answered {len(answered)} times; "
            f"outcomes {'as expected' if good else 'UNEXPECTED: ' + json.dumps(report.get('outcomes'))}; "
            f"{report['stats']}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
