"""Ways to add N structures to a dataset, at equal N: plain MD, biased MD, `generate`, QUESTS.

Issue 24 asks whether exploring (biased MD, generation along the gradient) is worth it
against plain MD and Monte Carlo. Systems: EMT Cu (32-atom cubic fcc cell, a = 3.61 Å)
and EMT Cu3Au (32-atom L1_2 cell, a = 3.75 Å). The starting dataset is 10 frames of 300 K
MD (seed 0; the methods' MD runs use seeds 100, 101, ...). Each method adds up to N_MAX
structures, one after the other, each new against the dataset and the structures before
it; the first 10, 30, 100 are evaluated (every method is sequential, so the first N of a
run of N_MAX are the run of N):

* plain MD at 300 K and at 1200 K (`md_frames`): a frame every `INTERVAL` steps after 100
  steps of equilibration;
* biased MD at 300 K and 1200 K (`atominfo.workflows.explore`, defaults: 0.1 eV/nat on the
  largest dH, bias capped at 1 eV/Å per atom): a snapshot whenever the largest dH against
  the growing dataset reaches 0, checked every `INTERVAL` steps, at most `MAX_STEPS`;
* `generate` with Monte Carlo moves and with gradient moves (`moves="gradient"`), both
  with the default "target" objective (largest dH in [1, 5] nats), seeds the 10 start
  frames in turn, default constraints (minimum distance 0.8 x the seed's, density +-10%);
* the published QUESTS package's ``mcmc`` command, as a black box in its own venv
  (`quests_baseline.py mcmc`), one process per structure, ``-n QUESTS_STEPS -t 3 -j 1``,
  seed frame i mod 10, on the start frames plus every structure it made before.

Figures: (a) entropy H of the N structures' environments and of the whole dataset, nats;
(b) coverage of held-out hard environments: fraction with dH <= 0 against the dataset, for
a (100) slab (the cell with 6 Å of vacuum on z), a vacancy, a 3% strained crystal (each two
300 K MD frames) and a 2500 K melt (two frames); (c) physically invalid structures: a
smallest interatomic distance below 0.7 x the crystal's nearest-neighbour distance, or an
EMT energy more than `E_INVALID` eV/atom above the crystal's (the 2500 K melt is printed for
scale); (d) wall time of the whole run of N_MAX and per structure. All descriptors are the
plain (species-blind) ones, k = 32, rc = 5 Å, h = 0.015 1/Å.

Run (results appended to --json as each run ends, so a partial run keeps what finished):
    OMP_NUM_THREADS=1 python benchmarks/bench_explore.py --json /tmp/explore.json
    python benchmarks/bench_explore.py --json /tmp/explore.json --report --figure docs/img/x.png
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # small matrices: BLAS threads only contend

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import ase.io  # noqa: E402
import numpy as np  # noqa: E402
from ase import Atoms  # noqa: E402
from ase.build import bulk  # noqa: E402
from ase.calculators.emt import EMT  # noqa: E402

from atominfo import delta_entropy, entropy  # noqa: E402
from atominfo.descriptor.kernel import min_distance, structure_descriptors  # noqa: E402
from atominfo.structures.datasets import md_frames  # noqa: E402
from atominfo.workflows.explore import BiasOptions, ExploreOptions, explore  # noqa: E402
from atominfo.workflows.generate import generate  # noqa: E402

H = 0.015
INTERVAL = 10
SIZES = (10, 30, 100)
MAX_STEPS = 6000  # biased runs stop here if they have not found N snapshots
QUESTS_STEPS = 100
E_INVALID = 1.0  # eV/atom above the crystal
METHODS = (
    "plain MD 300 K",
    "plain MD 1200 K",
    "biased 300 K",
    "biased 1200 K",
    "generate MC",
    "generate gradient",
    "QUESTS mcmc",
)
HERE = Path(__file__).resolve().parent


def crystal(system: str) -> Atoms:
    if system == "Cu":
        return bulk("Cu", "fcc", a=3.61, cubic=True) * (2, 2, 2)
    cell = bulk("Cu", "fcc", a=3.75, cubic=True)
    cell.symbols[0] = "Au"  # the cube corner: L1_2 Cu3Au
    return cell * (2, 2, 2)


def held_out(cell: Atoms) -> dict[str, list[Atoms]]:
    vacancy = cell.copy()
    del vacancy[0]
    strained = cell.copy()
    strained.set_cell(strained.cell * 1.03, scale_atoms=True)
    slab = cell.copy()
    slab.center(vacuum=6.0, axis=2)
    slab.pbc = (True, True, False)
    return {
        "slab": md_frames(slab, 300.0, 2, seed=11),
        "vacancy": md_frames(vacancy, 300.0, 2, seed=12),
        "strained": md_frames(strained, 300.0, 2, seed=13),
        "melt": md_frames(cell, 2500.0, 2, equilibration=300, seed=14),
    }


def describe(frames) -> np.ndarray:
    return np.concatenate([structure_descriptors(f) for f in frames])


def energy_per_atom(atoms: Atoms) -> float:
    a = atoms.copy()
    a.calc = EMT()
    return float(a.get_potential_energy() / len(a))


def run_method(method: str, n: int, seed: int, cell: Atoms, start_frames, start: np.ndarray):
    """The structures `method` adds (up to n), in order."""
    temperature = 300.0 if method.endswith("300 K") else 1200.0
    md_seed = 100 + seed  # not 0: the start frames' own trajectory
    if method.startswith("plain"):
        return md_frames(cell, temperature, n, interval=INTERVAL, seed=md_seed)
    if method.startswith("biased"):
        options = ExploreOptions(
            temperature=temperature,
            steps=MAX_STEPS,
            interval=INTERVAL,
            target=0.0,
            max_snapshots=n,
            seed=md_seed,
            bias=BiasOptions(h=H),
        )
        return explore(cell, EMT(), start, options).snapshots
    if method.startswith("generate"):
        moves = "gradient" if method.endswith("gradient") else "single"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # fewer than n: counted in the table
            return generate(start_frames, start, n, h=H, seed=seed, moves=moves).candidates
    return quests_mcmc(n, seed, start_frames)


def quests_mcmc(n: int, seed: int, start_frames) -> list[Atoms]:
    """n structures from QUESTS' mcmc, one process each, on the growing dataset."""
    made: list[Atoms] = []
    python = os.environ.get("QUESTS_PYTHON", "/tmp/quests-venv/bin/python")
    with tempfile.TemporaryDirectory() as d:
        for i in range(n):
            data, out = Path(d) / "data.extxyz", Path(d) / f"out{i}.xyz"
            ase.io.write(data, [*start_frames, *made], format="extxyz")
            task = dict(data=str(data), index=(i + seed) % len(start_frames), steps=QUESTS_STEPS)
            task.update(target=3, out=str(out))
            proc = subprocess.run(
                [python, str(HERE / "quests_baseline.py"), "mcmc", json.dumps(task)],
                capture_output=True,
                text=True,
                cwd=d,
            )
            if proc.returncode != 0 or not out.exists():
                print(f"  QUESTS mcmc failed (structure {i}): {proc.stderr.strip()[-300:]}")
                break
            atoms = ase.io.read(out)
            atoms.calc = None
            made.append(atoms)
    return made


def evaluate(structures, start, tests, d_nn: float, e0: float, n_max: int) -> dict:
    """Every figure of the first N structures, for each N in SIZES up to n_max (fewer where
    the method made fewer: "made" says how many)."""
    out = {}
    X = [structure_descriptors(s) for s in structures]
    invalid = [
        bool(min_distance(s) < 0.7 * d_nn or energy_per_atom(s) - e0 > E_INVALID)
        for s in structures
    ]
    for n in SIZES:
        if n > n_max or not structures:
            continue
        new = np.concatenate(X[:n])
        data = np.concatenate([start, new])
        cover = {k: float((delta_entropy(v, data, H) <= 0).mean()) for k, v in tests.items()}
        out[str(n)] = dict(
            made=min(n, len(structures)),
            H_new=float(entropy(new, H)),
            H_dataset=float(entropy(data, H)),
            coverage=float(np.mean(list(cover.values()))),
            per_set=cover,
            invalid=int(sum(invalid[:n])),
        )
    return out


def measure(args) -> None:
    path = Path(args.json[0])
    results = json.loads(path.read_text()) if path.exists() else []
    done = {(r["system"], r["method"], r["seed"]) for r in results}
    for system in args.systems:
        cell = crystal(system)
        start_frames = md_frames(cell, 300.0, 10)
        start = describe(start_frames)
        tests = {k: describe(v) for k, v in held_out(cell).items()}
        d_nn, e0 = float(min_distance(cell)), energy_per_atom(cell)
        melt = np.mean([energy_per_atom(a) for a in held_out(cell)["melt"]]) - e0
        print(f"{system}: start {len(start)} env.; NN {d_nn:.3f} Å; melt +{melt:.2f} eV/atom")
        for method in args.methods:
            for seed in args.seeds:
                if (system, method, seed) in done:
                    continue
                t0 = time.perf_counter()
                structures = run_method(method, args.n_max, seed, cell, start_frames, start)
                seconds = time.perf_counter() - t0
                row = dict(system=system, method=method, seed=seed, seconds=seconds)
                row.update(made=len(structures), melt_excess=float(melt), load=os.getloadavg())
                row["sizes"] = evaluate(structures, start, tests, d_nn, e0, args.n_max)
                results.append(row)
                path.write_text(json.dumps(results, indent=1))
                print(f"  {method} seed {seed}: {len(structures)} in {seconds:.1f} s", flush=True)


def report(args) -> None:
    results = [r for path in args.json for r in json.loads(Path(path).read_text())]
    sets = ("slab", "vacancy", "strained", "melt")
    head = ["system", "N", "method", "H(new)", "H(dataset)", "coverage", *sets, "invalid"]
    head += ["wall s (run of N_max)", "s per structure"]
    print("| " + " | ".join(head) + " |")
    print("|" + " --- |" * len(head))
    curves: dict = {}
    for system in dict.fromkeys(r["system"] for r in results):
        for n in SIZES:
            for method in METHODS:
                rows = [r for r in results if (r["system"], r["method"]) == (system, method)]
                got = [r["sizes"][str(n)] for r in rows if str(n) in r["sizes"]]
                if not got:
                    continue
                mean = {k: np.mean([g[k] for g in got]) for k in ("H_new", "H_dataset", "coverage")}
                cells = [f"{mean['H_new']:.2f}", f"{mean['H_dataset']:.2f}"]
                cells += [f"{mean['coverage']:.3f}"]
                cells += [f"{np.mean([g['per_set'][s] for g in got]):.2f}" for s in sets]
                cells += [f"{sum(g['invalid'] for g in got)}/{sum(g['made'] for g in got)}"]
                cells += [f"{min(r['seconds'] for r in rows):.0f}"]
                cells += [f"{min(r['seconds'] / max(r['made'], 1) for r in rows):.2f}"]
                made = min(g["made"] for g in got)
                label = f"{n}" + ("" if made == n else f" (made {made})")
                seeds = len(got)
                print(
                    f"| {system} | {label} | {method} ({seeds} seeds) | " + " | ".join(cells) + " |"
                )
                point = (made, mean["coverage"], mean["H_dataset"])
                curves.setdefault((system, method), []).append(point)
    if args.figure:
        figure(curves, args.figure)


def figure(curves: dict, path: str) -> None:
    """Coverage (top) and dataset entropy (bottom) against N, one column per system."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems = list(dict.fromkeys(s for s, _ in curves))
    fig, axes = plt.subplots(
        2, len(systems), figsize=(5.4 * len(systems), 7.2), squeeze=False, sharex=True
    )
    styles = dict(zip(METHODS, ["o-", "o--", "s-", "s--", "^-", "v-", "D:"], strict=True))
    colours = dict(zip(METHODS, [f"C{i}" for i in range(len(METHODS))], strict=True))
    for col, system in enumerate(systems):
        for method in METHODS:
            pts = curves.get((system, method))
            if pts:
                n, cover, h = zip(*pts, strict=True)
                for ax, y in ((axes[0][col], cover), (axes[1][col], h)):
                    ax.plot(n, y, styles[method], color=colours[method], label=method)
        axes[0][col].set_title(f"EMT {system} (32 atoms), start: 10 frames at 300 K")
        axes[0][col].set_ylabel("held-out coverage (fraction dH <= 0)")
        axes[1][col].set_ylabel("H(dataset), nats")
        axes[1][col].set_xlabel("structures added (N)")
        for ax in axes[:, col]:
            ax.set_xscale("log")
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    text = "results file (measuring: the first; --report: all, merged)"
    parser.add_argument("--json", nargs="+", default=["bench_explore.json"], help=text)
    parser.add_argument("--systems", nargs="+", default=["Cu", "Cu3Au"])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--n-max", type=int, default=max(SIZES))
    parser.add_argument("--report", action="store_true", help="print the table from --json")
    parser.add_argument("--figure", default=None, help="with --report: coverage vs N, PNG")
    args = parser.parse_args()
    report(args) if args.report else measure(args)


if __name__ == "__main__":
    main()
