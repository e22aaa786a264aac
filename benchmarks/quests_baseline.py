"""Black-box timings of the published QUESTS package, run inside its own virtual environment.

Not imported by atominfo: `bench_kernels.py` and `bench_descriptors.py` run
this file with the interpreter of a separate environment where ``quests`` is
installed (``python3 -m venv /tmp/quests-venv && /tmp/quests-venv/bin/pip install quests``)
and read one JSON line from its output. Only the package's public functions
are called; the inputs are built here with ASE exactly as atominfo builds them
(FCC Cu, a = 3.61 Å, cubic cells, ``Atoms.rattle(sigma, seed)``).

The species tasks (`bench_species_quests.py`) read structures from an
extxyz file written by atominfo's side and use the package's descriptor
(``species``: null) or its multi-element descriptor (``species``: the list
of elements, one block per species); descriptors or dH per atom are written
to ``out`` (.npy) for atominfo's side to compare.

Usage: python quests_baseline.py TASK '{"json": "arguments"}'
TASK: descriptors | entropy | dh | mcmc | species-describe | species-entropy | species-dh
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
from ase.build import bulk


def crystal(repeat, sigma, seed):
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(tuple(repeat))
    atoms.rattle(sigma, seed=seed)
    return atoms


def describe(path, species):
    """(descriptor rows, symbol of each row) of every structure in `path`, and the seconds."""
    import ase.io
    from quests.descriptor import get_descriptors, get_descriptors_multicomponent

    def run(frames):
        if species:
            return get_descriptors_multicomponent(frames, k=32, cutoff=5.0, species=list(species))
        return get_descriptors(frames, k=32, cutoff=5.0)

    frames = ase.io.read(path, ":")
    symbols = np.concatenate([a.get_chemical_symbols() for a in frames])
    run(frames[:1])  # JIT warm-up on the data's own first structure
    t = time.perf_counter()
    x = run(frames)
    return np.asarray(x), symbols, time.perf_counter() - t


def species_task(task, args):
    """The species tasks: descriptors, entropies (pooled and per centre species), dH."""
    from quests.entropy import delta_entropy
    from quests.entropy import entropy as quests_entropy

    out = {"task": task}
    if task == "species-describe":
        x, _, seconds = describe(args["path"], args.get("species"))
        np.save(args["out"], x)
        out.update(seconds=seconds, shape=list(x.shape))
    elif task == "species-entropy":
        out["sets"] = []
        for path in args["paths"]:
            x, symbols, seconds = describe(path, args.get("species"))
            t = time.perf_counter()
            pooled = float(quests_entropy(x, h=args["h"]))
            t_pooled = time.perf_counter() - t
            per = {}
            for s in sorted(set(symbols.tolist())):
                per[s] = float(quests_entropy(x[symbols == s], h=args["h"]))
            out["sets"].append(
                dict(
                    describe_seconds=seconds,
                    entropy_seconds=t_pooled,
                    n=len(x),
                    width=x.shape[1],
                    entropy=pooled,
                    per_species=per,
                )
            )
    elif task == "species-dh":
        ref, _, t_ref = describe(args["ref"], args.get("species"))
        qry, _, t_qry = describe(args["test"], args.get("species"))
        t = time.perf_counter()
        dh = np.asarray(delta_entropy(qry, ref, h=args["h"]))
        out.update(
            describe_seconds=t_ref + t_qry,
            dh_seconds=time.perf_counter() - t,
            n_ref=len(ref),
            n_query=len(qry),
        )
        np.save(args["out"], dh)
    return out


def mcmc(args):
    """The package's documented ``quests mcmc`` command (next to this interpreter) on
    ``data`` from frame ``index``: the structure it reaches written to ``out`` (.xyz)."""
    import subprocess
    from pathlib import Path

    quests = str(Path(sys.executable).parent / "quests")
    command = [quests, "mcmc", args["data"], "-i", str(args["index"]), "-n", str(args["steps"])]
    command += ["-t", str(args["target"]), "-j", "1", "-o", args["out"]]
    t = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(proc.stderr[-2000:])
    return {"task": "mcmc", "seconds": time.perf_counter() - t, "out": args["out"]}


def main():
    from quests.descriptor import get_descriptors
    from quests.entropy import approx_delta_entropy, delta_entropy, perfect_entropy

    task, args = sys.argv[1], json.loads(sys.argv[2])
    if task == "mcmc":  # a process of its own: no warm-up here
        print(json.dumps(mcmc(args)))
        return
    get_descriptors([crystal((3, 3, 3), 0.1, 0)], k=32, cutoff=5.0)  # JIT warm-up
    out = {"task": task}
    if task.startswith("species-"):
        out = species_task(task, args)
    elif task == "descriptors":
        atoms = crystal(args["repeat"], args.get("sigma", 0.1), args.get("seed", 0))
        t = time.perf_counter()
        x = get_descriptors([atoms], k=32, cutoff=5.0)
        out.update(seconds=time.perf_counter() - t, atoms=len(atoms), shape=list(x.shape))
    elif task == "entropy":
        atoms = crystal(args["repeat"], args.get("sigma", 0.1), args.get("seed", 0))
        x = get_descriptors([atoms], k=32, cutoff=5.0)
        perfect_entropy(x[:500], h=args["h"], batch_size=args.get("batch", 10000))  # warm-up
        t = time.perf_counter()
        H = perfect_entropy(x, h=args["h"], batch_size=args.get("batch", 10000))
        out.update(seconds=time.perf_counter() - t, n=len(x), entropy=float(H))
    elif task == "dh":
        ref = get_descriptors([crystal(args["ref_repeat"], args["ref_sigma"], 0)], k=32, cutoff=5.0)
        qry = get_descriptors([crystal(args["repeat"], args["sigma"], 1)], k=32, cutoff=5.0)
        qry = qry[: args.get("n_query", len(qry))]
        delta_entropy(qry[:200], ref[:2000], h=args["h"])  # warm-up
        t = time.perf_counter()
        exact = delta_entropy(qry, ref, h=args["h"])
        t_exact = time.perf_counter() - t
        t = time.perf_counter()
        approx = approx_delta_entropy(qry, ref, h=args["h"], n=3)
        t_approx = time.perf_counter() - t
        exact, approx = np.asarray(exact), np.asarray(approx)
        out.update(
            n_query=len(qry),
            n_ref=len(ref),
            exact_seconds=t_exact,
            approx_seconds=t_approx,
            sign_agreement=float(((exact > 0) == (approx > 0)).mean()),
            sign_agreement_inside=float(((approx <= 0)[exact <= 0]).mean())
            if (exact <= 0).any()
            else None,
            novelty_exact=float((exact > 0).mean()),
        )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
