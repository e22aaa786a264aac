"""Nucleation clusters: solid-like atoms (dH <= 0 against a solid reference, and with
--liquid-ref closer to the solid than to the liquid) joined within --edge Å; per
frame, the number of clusters (biconnected by default) and the largest. First, a warning
when random atoms in the proportion the reference calls solid-like in the melt form nuclei."""

from __future__ import annotations

from pathlib import Path

from atominfo.cli import options


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
        "--warn-chance-cluster",
        type=t("chance_cluster_warning", "--warn-chance-cluster"),
        default=10,
        help="Warn when random atoms, in the proportion called solid-like in the first "
        "frame (or the liquid reference), form a cluster of this many atoms.",
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
    from atominfo.cli.load import reference
    from atominfo.cli.report import print_json, progress, say, table
    from atominfo.errors import InputError
    from atominfo.runs.guard import check_outputs
    from atominfo.settings import DescriptorSpec, Reading
    from atominfo.structures.scan import count_atoms
    from atominfo.workflows.clusters_run import output_checks, run_clusters
    from atominfo.workflows.nucleation import ClusterOptions

    if args.connected and args.method not in (None, "connected"):
        raise InputError(f"--connected contradicts --method {args.method}")
    method = "connected" if args.connected else (args.method or "biconnected")
    liquid_files = args.liquid_ref or []
    names = (("solid", args.ref), ("liquid", liquid_files))
    # refuse an output that is an input (or unwritable) before the references are built
    check_outputs(
        inputs=[*args.files, *args.ref, *liquid_files],
        outputs=output_checks(args.table, args.output, args.plot),
    )
    options.apply_threads(args)
    ref = reference(args, args.bandwidth)
    liquid = reference(args, args.bandwidth, files=liquid_files) if liquid_files else None
    total = count_atoms(args.files, args.index, args.format)
    with progress("clusters", total, args.quiet, "atoms") as advance:
        result = run_clusters(
            list(map(str, args.files)),
            ref,
            liquid_reference=liquid,
            options=ClusterOptions(
                args.edge,
                method,
                args.min_size,
                args.warn_solid_fraction,
                args.n_star,
                args.warn_chance_cluster,
                "; ".join(f"{w} reference {' '.join(map(str, f))}" for w, f in names if f),
            ),
            table=args.table,
            output=args.output,
            plot=args.plot,
            reading=Reading(args.index, args.format, args.type_map),
            spec=DescriptorSpec(args.k, args.cutoff, args.rescale_volume),
            progress=advance,
        )
    if args.json:
        print_json(result)
        return
    several = len({r["source"] for r in result.per_frame}) > 1
    rows = [
        [f"{r['source']}:" * several + str(r["source_frame"])]
        + ["-" if r["timestep"] is None else r["timestep"]]
        + [r[k] for k in ("atoms", "solid_like", "clusters", "largest")]
        for r in result.per_frame
    ]
    headers = ["frame", "timestep", "atoms", "solid-like", "clusters", "largest"]
    say(table(headers, rows, title=result.title(), left=0))
