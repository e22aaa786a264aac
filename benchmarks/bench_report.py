"""Runtime of `atominfo report` on a few hundred structures (the built-in EMT Cu data).

The dataset: 200 varied FCC Cu cells (config_type weak/strong, 32-96 atoms)
and 20 frames of liquid Cu (config_type melt, 108 atoms); the reference: 10
frames of FCC Cu at 600 K. Prints the time of each analysis of the report
(best of --repeat runs) and, as a baseline measured in the same run, the
time of the whole dataset's entropy H alone. Writes the page and the
chemiscope file of the last run to --out (default: a temporary directory);
docs/img/report.png is a screenshot of that page::

    python benchmarks/bench_report.py --out /tmp/report
    chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \\
        --screenshot=docs/img/report.png --window-size=1280,4000 file:///tmp/report/report.html
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def make_data(directory: Path) -> tuple[list[Path], Path]:
    import ase.io

    from atominfo.structures.datasets import cu_melt, fcc_cu, md_frames, varied_fcc_cu

    crystal, melt = directory / "cu_varied.extxyz", directory / "cu_melt.extxyz"
    ref = directory / "cu_fcc_600K.extxyz"
    if not crystal.exists():
        ase.io.write(crystal, varied_fcc_cu(200, seed=1))
        frames = cu_melt(3, n_frames=20, seed=1)
        for a in frames:
            a.info["config_type"] = "melt"
        ase.io.write(melt, frames)
        ase.io.write(ref, md_frames(fcc_cu(3), 600.0, 10, seed=2))
    return [crystal, melt], ref


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp())
    out.mkdir(parents=True, exist_ok=True)
    files, ref = make_data(out)

    from atominfo import entropy
    from atominfo.descriptor import load_frames
    from atominfo.outputs.chemiscope import write_report_chemiscope
    from atominfo.outputs.html import write_report_html
    from atominfo.workflows.report import dataset_report

    data = load_frames([str(f) for f in files])
    ref_X = load_frames([str(ref)]).X
    print(
        f"{len(data)} structures, {data.n_rows} environments; reference {len(ref_X)} "
        f"environments; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
    )
    best: dict = {}
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        entropy(data.X, 0.015)
        best["baseline: H of the whole dataset"] = min(
            best.get("baseline: H of the whole dataset", 1e9), time.perf_counter() - t0
        )
        marks = [("start", time.perf_counter())]

        def mark(name, marks=marks):
            marks.append((name, time.perf_counter()))

        report = dataset_report(
            data,
            0.015,
            group_by="config_type",
            reference=ref_X,
            progress=mark,
            provenance={
                "files": [str(f) for f in files],
                "reference_files": [str(ref)],
                "title": "Cu: varied FCC cells and melt",
            },
        )
        marks.append(("page", time.perf_counter()))
        write_report_html(out / "report.html", report)
        marks.append(("chemiscope", time.perf_counter()))
        write_report_chemiscope(out / "report.json.gz", report)
        marks.append(("end", time.perf_counter()))
        for (name, t), (_, t_next) in zip(marks[1:], marks[2:]):
            best[name] = min(best.get(name, 1e9), t_next - t)
        best["total"] = min(best.get("total", 1e9), marks[-1][1] - marks[0][1])
    for name, seconds in best.items():
        print(f"{name:<36}{seconds:8.2f} s")
    print(f"page: {out / 'report.html'} ({(out / 'report.html').stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
