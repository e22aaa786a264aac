"""`atominfo clusters` (nucleation clusters per frame) and `atominfo cnt` (critical nucleus)."""

from __future__ import annotations

import csv
from contextlib import nullcontext
import io
import json as _json
from pathlib import Path
from typing import Annotated, Optional

import typer

from atominfo.workflows.nucleation import DEFAULT_EDGE, critical_nucleus, iter_trajectory_clusters
from atominfo.errors import InputError
from atominfo.outputs.atomic import atomic_output
from atominfo.workflows.trajectory import count_atoms
from atominfo.cli.common import (BandwidthOpt, CutoffOpt, FormatOpt, IndexOpt, JsonOpt, KOpt, QuietOpt,
                     RescaleOpt, ThreadsOpt, parse_bandwidths, print_json, progress_bar,
                     set_threads, stdout)
from atominfo.cli.trajectory import FilesArg, RefOpt, reference_from_options

COLUMNS = ["frame", "source", "source_frame", "atoms", "solid_like", "clusters", "largest"]


def cmd_clusters(
    test: FilesArg,
    ref: RefOpt,
    edge: Annotated[float, typer.Option(
        "--edge", help="Largest distance of an edge between solid-like atoms, Å "
        "(minimum image).")] = DEFAULT_EDGE,
    connected: Annotated[bool, typer.Option(
        "--connected", help="Plain connected components instead of biconnected ones.")]
    = False,
    min_size: Annotated[int, typer.Option("--min-size", help="Smallest cluster counted, "
                                          "atoms.")] = 2,
    table: Annotated[Optional[Path], typer.Option(
        "--table", help="Per-frame table (.csv or .json).")] = None,
    output: Annotated[Optional[Path], typer.Option(
        "-o", "--output", help="extxyz with per-atom 'dH' and 'cluster' (1 = largest, "
        "0 = none) arrays, for OVITO.")] = None,
    plot: Annotated[Optional[Path], typer.Option(
        "--plot", help="Largest cluster and number of clusters against frame.")] = None,
    n_star: Annotated[Optional[float], typer.Option(
        "--n-star", help="Critical nucleus size (atoms) drawn on the plot (see "
        "`atominfo cnt`).")] = None,
    k: KOpt = 32, cutoff: CutoffOpt = 5.0, bandwidth: BandwidthOpt = "0.015",
    index: IndexOpt = ":", format: FormatOpt = None, rescale_volume: RescaleOpt = None,
    threads: ThreadsOpt = None, quiet: QuietOpt = False, json: JsonOpt = False,
):
    """Nucleation clusters: solid-like atoms (dH <= 0 against the solid reference) joined
    within --edge Å; per frame, the number of biconnected clusters and the largest."""
    set_threads(threads)
    h = parse_bandwidths(bandwidth)
    if isinstance(h, list):
        raise InputError("clusters need a single bandwidth")
    if min_size < 1:
        raise InputError(f"--min-size must be >= 1, got {min_size}")
    for path, suffixes in ((table, (".csv", ".json")), (output, (".extxyz", ".xyz"))):
        if path is not None and path.suffix not in suffixes:
            raise InputError(f"must end in {' or '.join(suffixes)}", source=str(path))
    reference = reference_from_options(ref, h, k, cutoff, rescale_volume, None, quiet)
    rows = []
    with (atomic_output(output) if output is not None else nullcontext()) as out_path:
        out_fh = open(out_path, "w") if out_path is not None else None
        try:
            with progress_bar("clusters", count_atoms(test, index, format), quiet,
                              "atoms") as advance:
                for frame in iter_trajectory_clusters(
                        test, reference, edge_length=edge,
                        method="connected" if connected else "biconnected",
                        min_size=min_size, index=index, format=format, k=k, cutoff=cutoff,
                        rescale_volume=rescale_volume, progress=advance):
                    rows.append(frame.summary())
                    if out_fh is not None:
                        _write_frame(out_fh, frame)
        finally:
            if out_fh is not None:
                out_fh.close()
    columns = {c: [r[c] for r in rows] for c in COLUMNS}
    if table is not None:
        with atomic_output(table) as tmp:
            if table.suffix == ".json":
                tmp.write_text(_json.dumps({"bandwidth": h, "edge_length": edge,
                                            "method": "connected" if connected else
                                            "biconnected", **columns}))
            else:
                text = io.StringIO()
                writer = csv.DictWriter(text, COLUMNS, lineterminator="\n")
                writer.writeheader()
                writer.writerows(rows)
                tmp.write_text(text.getvalue())
    if plot is not None:
        from atominfo.outputs.simulation_plots import plot_clusters

        plot_clusters(columns, plot, n_star)
    result = {"bandwidth": h, "edge_length": edge,
              "method": "connected" if connected else "biconnected", "frames": len(rows),
              "largest": max(columns["largest"]), "per_frame": rows,
              "table": str(table) if table else None, "output": str(output) if output else None}
    if json:
        print_json(result)
        return
    from rich.table import Table

    out = Table(title=f"{result['method']} clusters of solid-like atoms (dH <= 0, h = {h} "
                f"1/Å, edges <= {edge} Å)")
    for c in ("frame", "atoms", "solid-like", "clusters", "largest"):
        out.add_column(c, justify="right")
    for r in rows:
        out.add_row(str(r["frame"]), str(r["atoms"]), str(r["solid_like"]),
                    str(r["clusters"]), str(r["largest"]))
    stdout.print(out)


def _write_frame(fh, frame):
    import ase.io

    atoms = frame.atoms.copy()
    atoms.set_array("dH", frame.dH)
    atoms.set_array("cluster", frame.labels())
    ase.io.write(fh, atoms, format="extxyz")


def cmd_cnt(
    gamma: Annotated[float, typer.Option("--gamma", help="Solid-liquid interface energy, "
                                         "J/m^2.")] = 0.177,
    melting: Annotated[float, typer.Option("--tm", help="Melting temperature, K.")] = 1323.0,
    latent_heat: Annotated[float, typer.Option("--latent-heat", help="Latent heat of "
                                               "melting, kJ/mol.")] = 11.99,
    undercooling: Annotated[float, typer.Option("--undercooling", help="T_m - T, K.")]
    = 420.0,
    volume: Annotated[float, typer.Option("--volume", help="Volume per atom of the solid, "
                                          "Å^3.")] = 12.893,
    json: JsonOpt = False,
):
    """Classical nucleation theory: critical radius r* (Å) and size n* (atoms).

    Defaults are the paper's values for Cu (Mishin EAM) at 420 K undercooling.
    """
    result = critical_nucleus(gamma, melting, latent_heat, undercooling, volume)
    result.update({"gamma": gamma, "melting_temperature": melting, "latent_heat": latent_heat,
                   "undercooling": undercooling, "atomic_volume": volume})
    if json:
        print_json(result)
        return
    stdout.print(f"r* = {result['r_star']:.3f} Å, n* = {result['n_star']:.1f} atoms "
                 f"(gamma {gamma} J/m^2, T_m {melting} K, latent heat {latent_heat} kJ/mol, "
                 f"undercooling {undercooling} K, {volume} Å^3/atom)")
