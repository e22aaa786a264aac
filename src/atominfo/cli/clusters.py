"""Nucleation clusters: solid-like atoms (dH <= 0 against a solid reference, and with
--liquid-ref closer to the solid than to the liquid) joined within --edge Å; per
frame, the number of clusters (biconnected by default) and the largest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from atominfo.cli import options

PLOTS = (".png", ".pdf", ".svg")
COLUMNS = [
    "frame",
    "source",
    "source_frame",
    "timestep",
    "atoms",
    "solid_like",
    "clusters",
    "largest",
]


def add_arguments(parser) -> None:
    t = options.typed
    options.add_inputs(parser, help="Trajectory files (a melt, a quench, ...).")
    options.add_reference(parser)
    parser.add_argument(
        "--liquid-ref",
        action="append",
        type=Path,
        default=None,
        metavar="REF",
        help="Liquid reference structure files (or saved descriptors); repeat for several. "
        "An atom is then solid-like only when also more likely under the solid reference "
        "than under the liquid one (per environment: dH + log n is lower).",
    )
    parser.add_argument(
        "--warn-solid-fraction",
        type=t("solid_fraction_warning", "--warn-solid-fraction"),
        default=0.5,
        help="Without --liquid-ref, warn when more than this fraction of the first frame's "
        "atoms are solid-like (1: never).",
    )
    parser.add_argument(
        "--edge",
        type=t("edge_length", "--edge"),
        default=3.0,
        help="Largest distance of an edge between solid-like atoms, Å (minimum image).",
    )
    parser.add_argument(
        "--method",
        type=t("cluster_method", "--method"),
        default=None,
        metavar="{biconnected,2-edge-connected,connected}",
        help="Clusters: biconnected components (default; no single atom holds them "
        "together), 2-edge-connected (no single bond does; an atom in one cluster at most) "
        "or connected components.",
    )
    parser.add_argument(
        "--connected",
        action="store_true",
        help="Same as --method connected.",
    )
    parser.add_argument(
        "--min-size",
        type=t("min_size", "--min-size"),
        default=2,
        help="Smallest cluster counted, atoms.",
    )
    parser.add_argument("--table", type=Path, default=None, help="Per-frame table (.csv or .json).")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="extxyz with per-atom 'dH' and 'cluster' (1 = largest, 0 = none) arrays, for OVITO.",
    )
    parser.add_argument(
        "--plot",
        type=Path,
        default=None,
        help="Largest cluster and number of clusters against frame.",
    )
    parser.add_argument(
        "--n-star",
        type=t("n_star", "--n-star"),
        default=None,
        help="Critical nucleus size (atoms) drawn on the plot (see `atominfo cnt`).",
    )
    options.add_descriptor(parser, multicomponent=False)
    options.add_bandwidth(parser, several=False)
    options.add_engine(parser, backends=False)
    options.add_output(parser)


def run(args) -> None:
    import csv
    import io

    import ase.io

    from atominfo.cli.load import reference
    from atominfo.cli.report import print_json, progress, say, table, write_json
    from atominfo.errors import InputError
    from atominfo.outputs.atomic import atomic_output
    from atominfo.outputs.guard import OutputGuard
    from atominfo.structures.scan import count_atoms
    from atominfo.workflows.nucleation import iter_trajectory_clusters

    if args.connected and args.method not in (None, "connected"):
        raise InputError(f"--connected contradicts --method {args.method}")
    method = "connected" if args.connected else (args.method or "biconnected")
    liquid_files = args.liquid_ref or []
    outputs = [
        (args.table, (".csv", ".json")),
        (args.output, (".extxyz", ".xyz")),
        (args.plot, PLOTS),
    ]
    with OutputGuard(inputs=[*args.files, *args.ref, *liquid_files], outputs=outputs):
        options.apply_threads(args)
        args.multicomponent = False
        ref = reference(args, args.bandwidth)
        liquid = None
        if liquid_files:
            import argparse

            liquid = reference(
                argparse.Namespace(**{**vars(args), "ref": liquid_files}), args.bandwidth
            )
        rows = []
        out_file = atomic_output(args.output) if args.output is not None else None
        out_path = out_file.__enter__() if out_file is not None else None
        try:
            with progress(
                "clusters", count_atoms(args.files, args.index, args.format), args.quiet, "atoms"
            ) as advance:
                for frame in iter_trajectory_clusters(
                    list(map(str, args.files)),
                    ref,
                    liquid_reference=liquid,
                    edge_length=args.edge,
                    method=method,
                    min_size=args.min_size,
                    solid_fraction_warning=args.warn_solid_fraction,
                    index=args.index,
                    format=args.format,
                    type_map=args.type_map,
                    k=args.k,
                    cutoff=args.cutoff,
                    rescale_volume=args.rescale_volume,
                    progress=advance,
                ):
                    rows.append(frame.summary())
                    if out_path is not None:
                        atoms = frame.atoms.copy()
                        atoms.set_array("dH", frame.dH)
                        if frame.dH_liquid is not None:
                            atoms.set_array("dH_liquid", frame.dH_liquid)
                        atoms.set_array("cluster", frame.labels())
                        with open(out_path, "a") as fh:
                            ase.io.write(fh, atoms, format="extxyz")
        except BaseException as exc:
            if out_file is not None:
                out_file.__exit__(type(exc), exc, exc.__traceback__)
            raise
        if out_file is not None:
            out_file.__exit__(None, None, None)
        columns: dict[str, list[Any]] = {c: [r.get(c) for r in rows] for c in COLUMNS}
        if args.table is not None:
            if args.table.suffix == ".json":
                write_json(
                    args.table,
                    {
                        "bandwidth": args.bandwidth,
                        "edge_length": args.edge,
                        "method": method,
                        "liquid_reference": bool(liquid_files),
                        **columns,
                    },
                )
            else:
                text = io.StringIO()
                writer = csv.DictWriter(text, COLUMNS, lineterminator="\n", extrasaction="ignore")
                writer.writeheader()
                writer.writerows(rows)
                with atomic_output(args.table) as tmp:
                    tmp.write_text(text.getvalue())
        if args.plot is not None:
            from atominfo.cli.report import save_plot
            from atominfo.outputs.plots import plot_clusters

            save_plot(plot_clusters(columns, args.n_star), args.plot)
    result = {
        "bandwidth": args.bandwidth,
        "edge_length": args.edge,
        "method": method,
        "liquid_reference": bool(liquid_files),
        "frames": len(rows),
        "largest": max(columns["largest"]),
        "per_frame": rows,
        "table": args.table,
        "output": args.output,
        "plot": args.plot,
    }
    if args.json:
        print_json(result)
        return
    say(
        table(
            ["frame", "timestep", "atoms", "solid-like", "clusters", "largest"],
            [
                [
                    r["frame"],
                    "-" if r.get("timestep") is None else r["timestep"],
                    r["atoms"],
                    r["solid_like"],
                    r["clusters"],
                    r["largest"],
                ]
                for r in rows
            ],
            title=f"{method} clusters of solid-like atoms (dH <= 0"
            + (" and closer to the solid than the liquid" if liquid_files else "")
            + f", h = {args.bandwidth} 1/Å, edges <= {args.edge} Å)",
            left=0,
        )
    )
