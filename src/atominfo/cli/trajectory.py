"""`atominfo dh`: per-atom dH of a trajectory of any length, streamed and resumable."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

import typer

from atominfo.errors import InputError
from atominfo.outputs.stream import DHStreamWriter, Totals, bandwidth_labels
from atominfo.workflows.trajectory import count_atoms, iter_trajectory_dh, load_reference
from atominfo.cli.common import (BackendOpt, BandwidthOpt, CutoffOpt, DaskOpt, DeviceOpt, FormatOpt,
                     IndexOpt, JsonOpt, KOpt, MultiOpt, PrecisionOpt, QuietOpt, RescaleOpt,
                     ThreadsOpt, engine_options, fmt, parse_bandwidths, print_json,
                     progress_bar, set_threads, stdout)

FilesArg = Annotated[List[Path], typer.Argument(help="Structure files (any format ASE reads).")]
RefOpt = Annotated[List[Path], typer.Option(
    "--ref", "-r", help="Reference (training) structure files, or saved descriptors "
    "(.npy, .npz from `atominfo descriptors`); repeat for several.")]


def reference_from_options(ref, h, k, cutoff, rescale_volume, species, quiet, **engine):
    """Build the `Reference` named by --ref, with a progress bar."""
    options = {"rescale_volume": rescale_volume, "multicomponent": species or False}
    with progress_bar("reference descriptors", None, quiet) as advance:
        return load_reference(ref, h, k=k, cutoff=cutoff, descriptor_options=options,
                              progress=advance, **engine)


def _species(files, index, format):
    from atominfo.structures.frames import iter_frames

    return sorted({s for f in iter_frames(files, index=index, format=format)
                   for s in f.atoms.get_chemical_symbols()})


def cmd_dh(
    test: FilesArg,
    ref: RefOpt,
    output: Annotated[Optional[Path], typer.Option(
        "-o", "--output", help="Per-atom dH to .npy, .json, or .extxyz (frames with a "
        "per-atom 'dH' array that OVITO and ASE read).")] = None,
    table: Annotated[Optional[Path], typer.Option(
        "--table", help="Per-frame table (.csv or .json): atoms, fraction with dH > 0, "
        "max and mean dH (nats).")] = None,
    plot: Annotated[Optional[Path], typer.Option(
        "--plot", help="Figure of the fraction with dH > 0 and the max dH against frame "
        "(format from the extension: .png, .pdf, .svg).")] = None,
    resume: Annotated[bool, typer.Option(
        "--resume", help="Continue an interrupted run from its last complete frame "
        "(same inputs and options).")] = False,
    k: KOpt = 32, cutoff: CutoffOpt = 5.0, bandwidth: BandwidthOpt = "0.015",
    index: IndexOpt = ":", format: FormatOpt = None, rescale_volume: RescaleOpt = None,
    multicomponent: MultiOpt = False, threads: ThreadsOpt = None, quiet: QuietOpt = False,
    json: JsonOpt = False, backend: BackendOpt = None, dask: DaskOpt = None,
    device: DeviceOpt = None, precision: PrecisionOpt = "float64", ctx: typer.Context = None,
):
    """Per-atom differential entropy dH of TEST against the reference (nats); dH > 0 is novel.

    Frames are read, described and scored one at a time, so trajectories of any
    length run in bounded memory; outputs grow frame by frame and appear under
    their final names only when complete (an interrupted run continues with --resume).
    """
    set_threads(threads)
    h = parse_bandwidths(bandwidth)
    if output is not None and output.suffix not in (".npy", ".json", ".extxyz", ".xyz"):
        raise InputError("output must end in .npy, .json or .extxyz", source=str(output))
    if resume and output is None and table is None:
        raise InputError("--resume needs an output (-o) or a table (--table)")
    species = None
    if multicomponent:  # one species list for reference and test, so the blocks line up
        structure_refs = [r for r in ref if Path(r).suffix not in (".npy", ".npz")]
        species = _species(structure_refs + list(test), index, format)
    engine = engine_options(backend, dask, device, precision, ctx=ctx)
    reference = reference_from_options(ref, h, k, cutoff, rescale_volume, species, quiet,
                                       **engine)
    signature = {"test": [str(Path(t).resolve()) for t in test],
                 "ref": [str(Path(r).resolve()) for r in ref], "bandwidth": h, "k": k,
                 "cutoff": cutoff, "index": index, "format": format,
                 "rescale_volume": rescale_volume, "species": species}
    writer = None
    if output is not None or table is not None:
        writer = DHStreamWriter(output, table, h, signature, resume=resume)
    elif plot is not None:  # the plot alone needs the per-frame table, kept hidden
        writer = DHStreamWriter(None, plot.with_name(plot.name + ".frames.csv"), h, signature)
    totals = writer.totals if writer is not None else Totals(h)
    skip = writer.frames_done if writer is not None else 0
    total = count_atoms(test, index, format)
    try:
        with progress_bar("dH", total, quiet, "atoms") as advance:
            if skip:
                advance(totals.state["atoms"])
            for frame in iter_trajectory_dh(test, reference, index=index, format=format,
                                            k=k, cutoff=cutoff, rescale_volume=rescale_volume,
                                            species=species, skip=skip, progress=advance):
                if writer is not None:
                    writer.add(frame)
                else:
                    totals.add(frame.dH)
                    skip += 1
    except InputError:
        if writer is not None:
            writer.abort()
        raise
    except BaseException:
        if writer is not None:
            writer.close()  # keep partial files and checkpoint for --resume
        raise
    if writer is None:
        summary = totals.summary(skip)
    else:
        summary = writer.summary()
        if plot is not None:
            from atominfo.outputs.simulation_plots import plot_frames

            plot_frames(writer.read_table(), plot, bandwidth_labels(h)[0])
        if output is None and table is None:
            writer.abort()
        else:
            writer.finish()
    summary = {"bandwidth": h, **summary, "reference_environments": len(reference),
               "output": str(output) if output else None,
               "table": str(table) if table else None, "plot": str(plot) if plot else None}
    if json:
        print_json(summary)
        return
    stdout.print(f"{summary['environments']} test environments in {summary['frames']} frames "
                 f"against {len(reference)} reference environments (h = {fmt(h)} 1/Å)")
    stdout.print(f"  fraction with dH > 0 (novel): {fmt(summary['novelty'])}")
    stdout.print(f"  max dH: {fmt(summary['max_dH'])} nats   mean dH: "
                 f"{fmt(summary['mean_dH'])} nats")
    for name, path in (("per-atom dH", output), ("per-frame table", table), ("plot", plot)):
        if path:
            stdout.print(f"  {name} written to {path}")

