"""The fixed cost of a frame: reading many one-atom frames (`iter_frames`).

A file of `--frames` (default 20,000) single-atom extxyz frames is read
with `atominfo.structures.frames.iter_frames` (parse and validate each
frame), once with the cell the same in every frame (an NVT run) and once
with a different cell in each. With ``--baseline DIR`` (a ``src`` folder of
an earlier atominfo, e.g. from ``git archive``), the same reads run with it
too, alternating, in fresh processes: the ratio is measured in one run.
Milliseconds per frame, best of `--repeat` (default 3)::

    git archive <commit> src | tar -x -C /tmp/old
    .venv/bin/python benchmarks/bench_frame_overhead.py --baseline /tmp/old/src
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import sys, time
sys.path.insert(0, sys.argv[1])
from atominfo.structures.frames import iter_frames
start = time.perf_counter()
n = sum(1 for _ in iter_frames(sys.argv[2]))
print((time.perf_counter() - start) / n * 1e3)
"""


def write_frames(path: Path, n: int, same_cell: bool) -> None:
    """`n` one-atom Cu frames; the cell edge the same in each, or varying."""
    lines = []
    for i in range(n):
        a = 3.6 if same_cell else 3.6 + 1e-5 * i
        lattice = f"{a} 0.0 0.0 0.0 {a} 0.0 0.0 0.0 {a}"
        lines += ["1", f'Lattice="{lattice}" Properties=species:S:1:pos:R:3 pbc="T T T"']
        lines.append(f"Cu {0.001 * (i % 7):.8f} 0.00000000 0.00000000")
    path.write_text("\n".join(lines) + "\n")


def per_frame_ms(src: Path, path: Path) -> float:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(src), str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline", type=Path, help="src folder of an earlier atominfo")
    args = parser.parse_args()
    trees = {"this": ROOT / "src"}
    if args.baseline is not None:
        trees["baseline"] = args.baseline
    with tempfile.TemporaryDirectory() as tmp:
        for same in (True, False):
            path = Path(tmp) / f"many_{same}.extxyz"
            write_frames(path, args.frames, same)
            best = {name: float("inf") for name in trees}
            for _ in range(args.repeat):  # alternating: load changes hit both alike
                for name, src in trees.items():
                    best[name] = min(best[name], per_frame_ms(src, path))
            cell = "same cell" if same else "cell varies"
            figures = ", ".join(f"{name} {ms:.3f} ms/frame" for name, ms in best.items())
            ratio = (
                f" (baseline / this = {best['baseline'] / best['this']:.2f})"
                if "baseline" in best
                else ""
            )
            print(f"{args.frames} one-atom frames, {cell}: {figures}{ratio}")


if __name__ == "__main__":
    main()
