"""`python -m bench [--quick] [--keep-cluster]`: run the benchmark, print one table on stdout.
Progress lines go to stderr. The bench cluster (`gitops-lab-bench`) is removed at the end.
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Any

from bench.scenarios import CLUSTER, Bench, Options


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="5 trials instead of 20, 100 objects only (about a minute)")
    parser.add_argument("--keep-cluster", action="store_true",
                        help=f"leave the {CLUSTER!r} cluster running afterwards")
    parser.add_argument("--only", default="",
                        help="run only the phases whose name contains this (comma-separated: any of "
                             "these), e.g. 'image' or 'clients,scale'")
    args = parser.parse_args(argv)

    def _terminate(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")  # unwinds through the cleanup

    signal.signal(signal.SIGTERM, _terminate)
    report = Bench(Options(quick=args.quick, keep_cluster=args.keep_cluster,
                           only=args.only)).run()
    print(report.render(), flush=True)
    return 1 if any(r.verdict == "ERROR" for r in report.rows) else 0


if __name__ == "__main__":
    sys.exit(main())
