"""The built-in demonstration: how much a hot crystal and a melt add to a cold crystal."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from atominfo.descriptor import descriptors
from atominfo.information import entropy_and_diversity
from atominfo.reference import Reference
from atominfo.structures import datasets


def build_sets(repeat: int = 3, n_frames: int = 10, seed: int = 0) -> dict:
    """Cu (EMT): FCC sampled at 300 K and 1000 K, and a melt; name -> list of Atoms."""
    crystal = datasets.fcc_cu(repeat)
    return {
        "crystal 300 K": datasets.md_frames(crystal, 300.0, n_frames, seed=seed),
        "crystal 1000 K": datasets.md_frames(crystal, 1000.0, n_frames, seed=seed + 1),
        "melt 2500 K": datasets.cu_melt(repeat, n_frames, seed=seed + 2),
    }


def run(repeat: int = 3, n_frames: int = 10, h: float = 0.015, seed: int = 0, log=print) -> dict:
    """Build the sets, then report H, D, log n per set and dH of the others
    against the cold crystal. Returns the figures as a dict."""
    t0 = time.perf_counter()
    log(
        f"Building Cu datasets with ASE's EMT potential ({4 * repeat**3} atoms, "
        f"{n_frames} frames each)..."
    )
    sets = build_sets(repeat, n_frames, seed)
    X = {name: descriptors(frames) for name, frames in sets.items()}
    log(f"  done in {time.perf_counter() - t0:.1f} s\n")
    log(f"Information content (h = {h} 1/Å, k = 32, rc = 5 Å; nats)")
    log(f"  {'set':<16}{'n':>7}{'log n':>9}{'H':>9}{'D':>9}")
    result: dict[str, Any] = {"bandwidth": h, "sets": {}, "against_cold_crystal": {}}
    for name, x in X.items():
        H, D = entropy_and_diversity(x, h)
        result["sets"][name] = {
            "n": len(x),
            "log_n": float(np.log(len(x))),
            "entropy": float(H),
            "diversity": float(D),
        }
        log(f"  {name:<16}{len(x):>7}{np.log(len(x)):>9.3f}{H:>9.3f}{D:>9.3f}")
    reference = Reference(X["crystal 300 K"], h)
    log("\nDifferential entropy against the 300 K crystal (dH > 0: outside its domain)")
    log(f"  {'set':<16}{'novel':>8}{'median dH':>11}{'max dH':>9}")
    for name in ("crystal 1000 K", "melt 2500 K"):
        dH = reference.delta_entropy(X[name])
        novel = float((dH > 0).mean())
        result["against_cold_crystal"][name] = {
            "novelty": novel,
            "median_dH": float(np.median(dH)),
            "max_dH": float(dH.max()),
        }
        log(f"  {name:<16}{novel:>8.1%}{np.median(dH):>11.2f}{dH.max():>9.2f}")
    log(f"\nTotal {time.perf_counter() - t0:.1f} s")
    return result
