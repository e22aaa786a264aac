"""Dataset subcommands: curve, overlap-matrix, compress, generations."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

import numpy as np
import typer

from atominfo.errors import InputError
from atominfo.structures.frameset import FrameSet, load_frames
from atominfo.cli.common import (CutoffOpt, FormatOpt, IndexOpt, JsonOpt, KOpt, MultiOpt, QuietOpt,
                     RescaleOpt, ThreadsOpt, parse_bandwidths, print_json, progress_bar,
                     set_threads, stdout, to_jsonable)

FilesArg = Annotated[List[Path], typer.Argument(help="Structure files (any format ASE reads).")]
OneBandwidthOpt = Annotated[str, typer.Option("-b", "--bandwidth",
                                              help="Kernel bandwidth h in 1/Å (one value).")]
GroupByOpt = Annotated[Optional[str], typer.Option(
    "--group-by", help="extxyz info key whose values label the subsets (e.g. config_type); "
    "without it, each file is a subset.")]
PlotOpt = Annotated[Optional[Path], typer.Option(
    "--plot", help="Write a figure; format from the extension (.png, .svg, .pdf).")]


def _one_bandwidth(text: str) -> float:
    h = parse_bandwidths(text)
    if np.ndim(h) != 0:
        raise InputError("this command takes one bandwidth, not a list")
    return float(h)


def _check_plot(path):
    if path is not None:
        from atominfo.outputs.plots import check_plot_path

        check_plot_path(path)


def _load(files, k, cutoff, index, fmt, rescale, multicomponent, quiet,
          label="descriptors") -> FrameSet:
    with progress_bar(label, None, quiet) as advance:
        return load_frames(files, k, cutoff, index=index, format=fmt,
                           multicomponent=multicomponent, rescale_volume=rescale,
                           progress=advance)


def _subsets(data: FrameSet, group_by, files, sort=False) -> dict[str, np.ndarray]:
    """Frame numbers per subset: per info-key value, or per file."""
    if group_by is None and len(files) < 2:
        raise InputError("give several files or --group-by KEY to define the subsets")
    return data.groups(group_by, sort=sort)


def cmd_curve(
    file: FilesArg,
    by: Annotated[str, typer.Option("--by", help="Sample whole structures or single "
                                    "environments: structures | environments.")] = "structures",
    sizes: Annotated[int, typer.Option("--sizes", help="Number of log-spaced subset sizes "
                                       "(the fit drops the first and last three).")] = 12,
    seeds: Annotated[int, typer.Option("--seeds", help="Random subsets per size.")] = 3,
    seed: Annotated[int, typer.Option("--seed", help="First random seed (then seed+1, ...).")]
    = 0,
    at: Annotated[Optional[List[int]], typer.Option(
        "--at", help="Also report H and the information gap at this size (repeatable).")]
    = None,
    per_file: Annotated[bool, typer.Option("--per-file", help="One curve per file instead "
                                           "of one for all files together.")] = False,
    group_by: Annotated[Optional[str], typer.Option(
        "--group-by", help="One curve per value of this extxyz info key.")] = None,
    plot: PlotOpt = None,
    k: KOpt = 32, cutoff: CutoffOpt = 5.0, bandwidth: OneBandwidthOpt = "0.015",
    index: IndexOpt = ":", format: FormatOpt = None, rescale_volume: RescaleOpt = None,
    multicomponent: MultiOpt = False, threads: ThreadsOpt = None, quiet: QuietOpt = False,
    json: JsonOpt = False,
):
    """Learning curve: entropy of random subsets vs size, asymptote fit, information gap (nats)."""
    from atominfo.workflows.curves import learning_curve

    set_threads(threads)
    h = _one_bandwidth(bandwidth)
    _check_plot(plot)
    data = _load(file, k, cutoff, index, format, rescale_volume, multicomponent, quiet)
    if group_by is not None or per_file:
        subsets = data.groups(group_by)
    else:
        subsets = {"all": np.arange(len(data))}
    curves = {}
    for name, frames in subsets.items():
        part = FrameSet(data.X[data.rows(frames)],
                        np.concatenate([[0], np.cumsum(data.sizes[frames])]),
                        [data.sources[f] for f in frames], [data.source_frames[f] for f in frames])
        total = len(part) if by == "structures" else len(part.X)
        with progress_bar(f"curve {Path(name).name}", sizes * seeds, quiet, "subsets") as adv:
            curves[name] = learning_curve(part, h, by=by, n_sizes=min(sizes, total),
                                          n_seeds=seeds, seed=seed, at=at or (),
                                          progress=adv)
    if plot is not None:
        from atominfo.outputs.plots import plot_learning_curves

        labels = None if list(curves) == ["all"] else [Path(n).name for n in curves]
        plot_learning_curves(list(curves.values()), plot, labels=labels)
    result = {"bandwidth": h, "k": k, "cutoff": cutoff, "plot": plot,
              "curves": {name: c.to_dict() for name, c in curves.items()}}
    if json:
        print_json(result)
        return
    for name, c in curves.items():
        _print_curve(name, c)
    if plot is not None:
        stdout.print(f"figure written to {plot}")


def _print_curve(name, curve) -> None:
    from rich.table import Table

    table = Table(title=f"learning curve of {name} (h = {curve.bandwidth:g} 1/Å, by "
                  f"{curve.unit}, seeds {curve.seeds})")
    for col in (f"N ({curve.unit})", "environments", "H mean (nats)", "H sd (nats)",
                "fit (nats)"):
        table.add_column(col, justify="right")
    sd = curve.entropies.std(axis=1)
    for i, n in enumerate(curve.sizes):
        fitted = "" if curve.fit is None else f"{float(curve.fit(n)):.4f}"
        table.add_row(str(n), str(int(curve.environments[i].mean())), f"{curve.mean[i]:.4f}",
                      f"{sd[i]:.4f}", fitted)
    stdout.print(table)
    if curve.fit is None:
        stdout.print(f"  no asymptote fit: {curve.fit_error}")
        return
    f = curve.fit
    stdout.print(f"  fit H(N) = a - b exp(-c (ln N)^2): a = {f.a:.4f} nats, b = {f.b:.4f} nats, "
                 f"c = {f.c:.4g} (sizes {f.sizes[0]}..{f.sizes[-1]}, rms {f.rms:.3g} nats)")
    stdout.print(f"  asymptote a = {f.a:.4f} nats; information gap at the full size "
                 f"({curve.total} {curve.unit}): {curve.gap():.4f} nats; fitted gap below 0.05 "
                 f"nats from N = {f.saturation_size():.4g} {curve.unit}")
    for n in curve.extra:
        stdout.print(f"  at N = {n}: H = {curve.entropy_at(n):.4f} nats, gap = "
                     f"{curve.gap(n):.4f} nats")


def cmd_overlap_matrix(
    file: FilesArg,
    group_by: GroupByOpt = None, plot: PlotOpt = None,
    k: KOpt = 32, cutoff: CutoffOpt = 5.0, bandwidth: OneBandwidthOpt = "0.015",
    index: IndexOpt = ":", format: FormatOpt = None, rescale_volume: RescaleOpt = None,
    multicomponent: MultiOpt = False, threads: ThreadsOpt = None, quiet: QuietOpt = False,
    json: JsonOpt = False,
):
    """Overlap of every subset against every other: row i, column j = fraction of i with dH(x|j) <= 0."""
    from atominfo.workflows.overlap_matrix import overlap_matrix

    set_threads(threads)
    h = _one_bandwidth(bandwidth)
    _check_plot(plot)
    data = _load(file, k, cutoff, index, format, rescale_volume, multicomponent, quiet)
    groups = _subsets(data, group_by, file)
    subsets = {name: data.environments(frames) for name, frames in groups.items()}
    with progress_bar("overlap pairs", len(subsets) ** 2, quiet, "pairs") as advance:
        matrix = overlap_matrix(subsets, h, progress=advance)
    if plot is not None:
        from atominfo.outputs.plots import plot_overlap_matrix

        plot_overlap_matrix(matrix, plot)
    result = matrix.to_dict()
    result.update({"structures": [len(groups[n]) for n in groups], "group_by": group_by,
                   "k": k, "cutoff": cutoff, "plot": plot})
    if json:
        print_json(result)
        return
    from rich.table import Table

    table = Table(title=f"overlap of row subset with column subset (fraction of row "
                  f"environments with dH <= 0; h = {h:g} 1/Å)")
    table.add_column("subset (environments)")
    for label in matrix.labels:
        table.add_column(label, justify="right")
    for i, label in enumerate(matrix.labels):
        table.add_row(f"{label} ({matrix.sizes[i]})", *(f"{v:.3f}" for v in matrix.values[i]))
    stdout.print(table)
    if plot is not None:
        stdout.print(f"figure written to {plot}")


def cmd_compress(
    file: FilesArg,
    size: Annotated[str, typer.Option("-s", "--size", help="Structures to keep: a fraction "
                                      "(0.5) or a number (200).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Selected frames, unchanged "
                                         "(all info and arrays), as .extxyz.")],
    method: Annotated[str, typer.Option("-m", "--method", help="msc | fps | kmeans | random.")]
    = "msc",
    ref: Annotated[Optional[List[Path]], typer.Option(
        "--ref", "-r", help="Existing training set: select what best complements it "
        "(conditional msc). Repeatable.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (random, kmeans).")] = 0,
    summary: Annotated[Optional[Path], typer.Option(
        "--summary", help="JSON summary file (default: the output name with .json).")] = None,
    k: KOpt = 32, cutoff: CutoffOpt = 5.0, bandwidth: OneBandwidthOpt = "0.015",
    index: IndexOpt = ":", format: FormatOpt = None, rescale_volume: RescaleOpt = None,
    multicomponent: MultiOpt = False, threads: ThreadsOpt = None, quiet: QuietOpt = False,
    json: JsonOpt = False,
):
    """Keep the most informative structures: writes them and a JSON summary (H, D, overlap)."""
    from atominfo.workflows.compression import select, selection_size, write_selection
    from atominfo.outputs.atomic import atomic_output

    set_threads(threads)
    h = _one_bandwidth(bandwidth)
    if output.suffix not in (".extxyz", ".xyz"):
        raise InputError("output must end in .extxyz or .xyz", source=str(output))
    summary = summary or output.with_suffix(".json")
    if summary.resolve() == output.resolve():
        raise InputError("the summary and the output are the same file", source=str(output))
    species = multicomponent
    if multicomponent:
        from atominfo.cli.core import _species

        species = _species(list(file) + list(ref or []), index, format)
    data = _load(file, k, cutoff, index, format, rescale_volume, species, quiet)
    reference = None
    if ref:
        reference = _load(ref, k, cutoff, ":", format, rescale_volume, species, quiet,
                          "reference descriptors").X
    m = selection_size(size, len(data))
    with progress_bar(f"{method} selection", m, quiet, "structures") as advance:
        selection = select(data, size, method, h, seed=seed, reference=reference,
                           progress=advance)
    write_selection(data, selection, output)
    result = selection.to_dict()
    result.update({"input": [str(f) for f in file], "reference": [str(r) for r in ref or []],
                   "output": str(output), "k": k, "cutoff": cutoff,
                   "rescale_volume": rescale_volume})
    import json as _json

    with atomic_output(summary) as tmp:
        tmp.write_text(_json.dumps(to_jsonable(result), indent=2))
    if json:
        print_json(result)
        return
    stdout.print(f"{method}: kept {selection.n_structures} of {selection.total_structures} "
                 f"structures ({selection.n_environments} of {selection.total_environments} "
                 f"environments) in {selection.seconds:.1f} s")
    stdout.print(f"  selection H = {selection.entropy:.4f} nats, D = {selection.diversity:.4f} "
                 f"nats; full set inside the selection{' + reference' if ref else ''}: "
                 f"{selection.overlap:.1%}")
    stdout.print(f"  frames written to {output}, summary to {summary}")


def cmd_generations(
    file: FilesArg,
    group_by: Annotated[Optional[str], typer.Option(
        "--group-by", help="extxyz info key holding the generation (sorted numerically "
        "when numbers); without it, one file per generation in the order given.")] = None,
    plot: PlotOpt = None,
    k: KOpt = 32, cutoff: CutoffOpt = 5.0, bandwidth: OneBandwidthOpt = "0.015",
    index: IndexOpt = ":", format: FormatOpt = None, rescale_volume: RescaleOpt = None,
    multicomponent: MultiOpt = False, threads: ThreadsOpt = None, quiet: QuietOpt = False,
    json: JsonOpt = False,
):
    """Per generation: size, novelty against all earlier ones, H and D of the cumulative set."""
    from atominfo.workflows.generations import generation_report

    set_threads(threads)
    h = _one_bandwidth(bandwidth)
    _check_plot(plot)
    data = _load(file, k, cutoff, index, format, rescale_volume, multicomponent, quiet)
    groups = _subsets(data, group_by, file, sort=group_by is not None)
    with progress_bar("generations", len(groups), quiet, "generations") as advance:
        rows = generation_report({n: data.environments(f) for n, f in groups.items()}, h,
                                 structures={n: len(f) for n, f in groups.items()},
                                 progress=advance)
    if plot is not None:
        from atominfo.outputs.plots import plot_generations

        plot_generations(rows, plot)
    result = {"bandwidth": h, "k": k, "cutoff": cutoff, "group_by": group_by, "plot": plot,
              "generations": [r.to_dict() for r in rows]}
    if json:
        print_json(result)
        return
    from rich.table import Table

    table = Table(title=f"active-learning generations (h = {h:g} 1/Å; novel: dH > 0 against "
                  "all earlier generations; H, D of the cumulative set, nats)")
    for col in ("gen", "structures", "envs", "novel", "mean dH", "H", "D"):
        table.add_column(col, justify="left" if col == "gen" else "right")
    for r in rows:
        table.add_row(r.label, str(r.structures), str(r.environments),
                      "-" if r.novelty is None else f"{r.novelty:.1%}",
                      "-" if r.mean_dH is None else f"{r.mean_dH:.3f}",
                      f"{r.cumulative_entropy:.4f}", f"{r.cumulative_diversity:.4f}")
    stdout.print(table)
    if plot is not None:
        stdout.print(f"figure written to {plot}")
