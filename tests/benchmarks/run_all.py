"""Print the latest benchmark table (bench-results.json) as text or Markdown (for the README).

    python -m tests.benchmarks.run_all [--markdown] [FILE]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tests.benchmarks import figures

ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("file", nargs="?", default=str(ROOT / "bench-results.json"))
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    data, rows = figures.load_json(Path(args.file))
    m = data["machine"]
    print(f"Measured {data['measured_at']} on {m['cpu']} ({m['cores']} cores, {m['memory_gb']} GB), {m['os']}, "
          f"Python {m['python']}, SQLite {m['sqlite']}, PostgreSQL {m['postgresql']}.\n")
    print(figures.markdown_table(rows) if args.markdown else figures.text_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
