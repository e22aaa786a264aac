"""Core subcommands: descriptors, entropy, overlap, bandwidth (dh: see trajectory.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

import numpy as np
import typer

from atominfo import information
from atominfo.descriptor.bandwidth import fcc_calibration, volume_bandwidth
from atominfo.descriptor import descriptors
from atominfo.errors import InputError
from atominfo.outputs.atomic import atomic_output
from atominfo.structures.frames import iter_frames
from atominfo.cli.common import (BackendOpt, BandwidthOpt, CutoffOpt, DaskOpt, DeviceOpt, FormatOpt,
                     IndexOpt, JsonOpt, KOpt, MultiOpt, PrecisionOpt, QuietOpt, RescaleOpt,
                     ThreadsOpt, descriptor_options, engine_options, fmt, parse_bandwidths,
                     print_json, progress_bar, set_threads, stdout)

FilesArg = Annotated[List[Path], typer.Argument(help="Structure files (any format ASE reads).")]


def _describe(files, opts, quiet, label="descriptors", return_index=False):
    with progress_bar(label, None, quiet) as advance:
        return descriptors(files, progress=advance, return_index=return_index, **opts)


def cmd_descriptors(
    file: FilesArg,
    output: Annotated[Path, typer.Option("-o", "--output", help="Output .npy (matrix) or "
                                         ".npz (matrix X plus frame and atom of each row).")],
    k: KOpt = 32, cutoff: CutoffOpt = 5.0, index: IndexOpt = ":", format: FormatOpt = None,
    rescale_volume: RescaleOpt = None, multicomponent: MultiOpt = False,
    threads: ThreadsOpt = None, quiet: QuietOpt = False, json: JsonOpt = False,
):
    """Compute the descriptor matrix (n_atoms x (2k-1), 1/Å) and save it."""
    set_threads(threads)
    if output.suffix not in (".npy", ".npz"):
        raise InputError("output must end in .npy or .npz", source=str(output))
    opts = descriptor_options(k, cutoff, index, format, rescale_volume, multicomponent)
    X, idx = _describe(file, opts, quiet, return_index=True)
    with atomic_output(output) as tmp:
        with open(tmp, "wb") as fh:
            if output.suffix == ".npy":
                np.save(fh, X)
            else:
                np.savez(fh, X=X, frame=idx.frame, atom=idx.atom,
                         source=np.array(idx.sources), source_frame=np.array(idx.source_frames))
    summary = {"output": str(output), "environments": X.shape[0], "width": X.shape[1],
               "frames": len(idx.sources), "k": k, "cutoff": cutoff}
    if json:
        print_json(summary)
    else:
        stdout.print(f"wrote {X.shape[0]} x {X.shape[1]} descriptors of "
                     f"{len(idx.sources)} frames to {output}")


def cmd_entropy(
    file: FilesArg,
    k: KOpt = 32, cutoff: CutoffOpt = 5.0, bandwidth: BandwidthOpt = "0.015",
    index: IndexOpt = ":", format: FormatOpt = None, rescale_volume: RescaleOpt = None,
    multicomponent: MultiOpt = False, threads: ThreadsOpt = None, quiet: QuietOpt = False,
    json: JsonOpt = False, backend: BackendOpt = None, dask: DaskOpt = None,
    device: DeviceOpt = None, precision: PrecisionOpt = "float64", ctx: typer.Context = None,
    sample: Annotated[Optional[int], typer.Option(
        "--sample", help="Estimate H from this many random environments (each against all "
        "n) with a 95% confidence interval; D is then not computed.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the --sample draw.")] = 0,
):
    """Entropy H, diversity D, log n and n of each file and of all together (nats)."""
    set_threads(threads)
    h = parse_bandwidths(bandwidth)
    engine = engine_options(backend, dask, device, precision, ctx=ctx)
    opts = descriptor_options(k, cutoff, index, format, rescale_volume, multicomponent)
    if multicomponent:  # one species list for every file, so the blocks line up
        opts["multicomponent"] = _species(file, index, format)
    blocks = [_describe([f], opts, quiet, f"descriptors {f.name}") for f in file]
    rows = []
    sets = [(str(f), X) for f, X in zip(file, blocks)]
    if len(file) > 1:
        sets.append(("all", np.concatenate(blocks)))
    for name, X in sets:
        if sample is not None:
            rows.append(_sampled_row(name, X, h, sample, seed, quiet, engine))
            continue
        with progress_bar(f"entropy {Path(name).name}", len(X), quiet, "envs") as advance:
            H, D = information.entropy_and_diversity(X, h, progress=advance, **engine)
        rows.append({"set": name, "n": len(X), "log_n": float(np.log(len(X))),
                     "entropy": H, "diversity": D})
    result = {"bandwidth": h, "k": k, "cutoff": cutoff, "results": rows}
    if sample is not None:
        result.update(sample=sample, seed=seed)
    if json:
        print_json(result)
        return
    from rich.table import Table

    table = Table(title=f"information content (h = {fmt(h)} 1/Å, k = {k}, rc = {cutoff} Å)")
    for col in ("set", "n", "log n (nats)", "H (nats)", "D (nats)"):
        table.add_column(col, justify="left" if col == "set" else "right")
    for r in rows:
        H = fmt(r["entropy"])
        if sample is not None:
            H += " ± " + fmt(r["half_width"])
        table.add_row(r["set"], str(r["n"]), f"{r['log_n']:.4f}", H,
                      "-" if r["diversity"] is None else fmt(r["diversity"]))
    stdout.print(table)
    if sample is not None:
        stdout.print(f"H estimated from {min(sample, rows[0]['n'])} random environments per set "
                     f"(seed {seed}); ± is the half-width of the 95% confidence interval")


def _sampled_row(name, X, h, n_samples, seed, quiet, engine):
    with progress_bar(f"sampled entropy {Path(name).name}", min(n_samples, len(X)), quiet,
                      "envs") as advance:
        est = information.sampled_entropy(X, h, n_samples, seed, progress=advance, **engine)
    return {"set": name, "n": len(X), "log_n": float(np.log(len(X))),
            "entropy": est.entropy, "ci95_low": est.low, "ci95_high": est.high,
            "half_width": est.half_width, "n_samples": est.n_samples, "seed": est.seed,
            "diversity": None}


def _species(files, index, format) -> list[str]:
    return sorted({s for f in iter_frames(files, index=index, format=format)
                   for s in f.atoms.get_chemical_symbols()})


RefOpt = Annotated[List[Path], typer.Option("--ref", "-r", help="Reference (training) "
                                            "structure files; repeat for several.")]


def _reference_and_test(test, ref, opts, quiet):
    X = _describe(ref, opts, quiet, "reference descriptors")
    Y, idx = _describe(test, opts, quiet, "test descriptors", return_index=True)
    return X, Y, idx


def cmd_overlap(
    test: FilesArg,
    ref: RefOpt,
    k: KOpt = 32, cutoff: CutoffOpt = 5.0, bandwidth: BandwidthOpt = "0.015",
    index: IndexOpt = ":", format: FormatOpt = None, rescale_volume: RescaleOpt = None,
    multicomponent: MultiOpt = False, threads: ThreadsOpt = None, quiet: QuietOpt = False,
    json: JsonOpt = False, backend: BackendOpt = None, dask: DaskOpt = None,
    device: DeviceOpt = None, precision: PrecisionOpt = "float64", ctx: typer.Context = None,
    method: Annotated[str, typer.Option(
        "--method", help="classify: exact sign of dH from cluster bounds (fast); exact: "
        "compute every dH; auto: classify for large sets.")] = "auto",
):
    """Overlap (fraction with dH <= 0) and novelty (dH > 0) of TEST against the reference."""
    set_threads(threads)
    h = parse_bandwidths(bandwidth)
    engine = engine_options(backend, dask, device, precision, ctx=ctx)
    opts = descriptor_options(k, cutoff, index, format, rescale_volume, multicomponent)
    if multicomponent:
        opts["multicomponent"] = _species(list(ref) + list(test), index, format)
    X, Y, _ = _reference_and_test(test, ref, opts, quiet)
    with progress_bar("dH sign", len(Y), quiet, "envs") as advance:
        inside = information.inside_domain(Y, X, np.atleast_1d(h), method=method,
                                           progress=advance, **engine)
    ov = inside.mean(axis=1)
    result = {"bandwidth": h, "environments": len(Y), "reference_environments": len(X),
              "method": method,
              "overlap": ov if np.ndim(h) else ov[0],
              "novelty": 1 - ov if np.ndim(h) else 1 - ov[0]}
    if json:
        print_json(result)
    else:
        stdout.print(f"overlap {fmt(result['overlap'])}   novelty {fmt(result['novelty'])}   "
                     f"({len(Y)} test vs {len(X)} reference environments, h = {fmt(h)} 1/Å)")


def cmd_bandwidth(
    volume: Annotated[Optional[float], typer.Option(
        "--volume", help="Volume per atom (Å^3): print the volume rule's h.")] = None,
    rule: Annotated[str, typer.Option("--rule", help="Volume rule: gaussian or cutoff.")]
    = "gaussian",
    lattice: Annotated[float, typer.Option("--lattice", help="FCC lattice parameter, Å.")]
    = 3.58,
    strain: Annotated[Optional[float], typer.Option(
        "--strain", help="Strain of the second crystal (default: 3.54/3.58 Å pair).")] = None,
    k: KOpt = 32, cutoff: CutoffOpt = 5.0, json: JsonOpt = False,
):
    """The default bandwidth, its FCC calibration, and the volume rule."""
    cal = fcc_calibration(lattice, strain, k, cutoff)
    result = {"default_h": information.DEFAULT_BANDWIDTH, "fcc_calibration": cal}
    if volume is not None:
        result["volume"] = volume
        result["rule"] = rule
        result["volume_rule_h"] = volume_bandwidth(volume, rule)
    if json:
        print_json(result)
        return
    stdout.print(f"default bandwidth h = {information.DEFAULT_BANDWIDTH} 1/Å")
    stdout.print(f"FCC calibration: descriptor distance between a = {cal['lattice']:.4f} Å and "
                 f"{cal['strained_lattice']:.4f} Å (strain {cal['strain']:.4f}) is "
                 f"{cal['distance']:.5f} 1/Å, so h = {cal['h']:.5f} 1/Å (half of it)")
    if volume is not None:
        stdout.print(f"volume rule '{rule}' at {volume} Å^3/atom: h = "
                     f"{result['volume_rule_h']:.5f} 1/Å")
