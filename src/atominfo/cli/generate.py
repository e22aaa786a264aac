"""Generate candidate structures with environments new to a dataset (Monte Carlo annealing).

Each candidate starts from a seed structure (used in turn) and is annealed by
random atomic displacements and small cell strains until the largest per-atom
dH against the dataset, plus every candidate accepted before it, lies in the
target range (or, with --objective entropy, to maximise the dataset's entropy
gain). Minimum distance, density range and composition hold for every
candidate. Candidates carry their provenance in info and per-atom dH.
"""

from __future__ import annotations

from pathlib import Path

from atominfo.cli import options


def add_arguments(parser) -> None:
    t = options.typed
    options.add_inputs(parser, help="Seed structure files (--index selects frames).")
    options.add_reference(parser)
    parser.add_argument(
        "-n",
        "--n-candidates",
        type=t("n_candidates", "--n-candidates"),
        default=10,
        help="Candidates per generation.",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        help="Candidates as .extxyz: provenance in info, per-atom 'dH' array.",
    )
    parser.add_argument(
        "--summary",
        type=Path,
        default=None,
        help="Campaign summary as JSON (per generation: candidates, novelty, entropy gain).",
    )
    group = parser.add_argument_group("Monte Carlo")
    group.add_argument(
        "--generations",
        type=t("generations", "--generations"),
        default=1,
        help="Rounds; each is judged against the dataset and all earlier candidates.",
    )
    group.add_argument(
        "--steps",
        type=t("mc_steps", "--steps"),
        default=2000,
        help="Most Monte Carlo steps per candidate.",
    )
    group.add_argument(
        "--objective",
        type=t("objective", "--objective"),
        default="target",
        help="target: largest dH into [--target-low, --target-high]; "
        "entropy: maximise the dataset's entropy gain.",
    )
    group.add_argument(
        "--target-low",
        type=t("target_dh", "--target-low"),
        default=1.0,
        help="Lower end of the target range of the largest dH, nats.",
    )
    group.add_argument(
        "--target-high",
        type=t("target_dh", "--target-high"),
        default=5.0,
        help="Upper end of the target range of the largest dH, nats.",
    )
    group.add_argument(
        "--temperature-start",
        type=t("mc_temperature", "--temperature-start"),
        default=1.0,
        help="Annealing temperature at the first step, nats.",
    )
    group.add_argument(
        "--temperature-end",
        type=t("mc_temperature", "--temperature-end"),
        default=0.01,
        help="Annealing temperature at the last step, nats.",
    )
    group.add_argument(
        "--step-size",
        type=t("step_size", "--step-size"),
        default=0.1,
        help="Standard deviation of an atomic displacement, Å.",
    )
    group.add_argument(
        "--strain",
        type=t("mc_strain", "--strain"),
        default=0.01,
        help="Standard deviation of a cell-strain component (periodic cells; 0: no cell moves).",
    )
    options.add_seed(parser, "Random seed: the same inputs and seed give identical output.")
    group = parser.add_argument_group("constraints (always enforced)")
    group.add_argument(
        "--min-distance",
        type=t("min_distance", "--min-distance"),
        default=None,
        help="Smallest interatomic distance, Å, periodic images "
        "included (default: 0.8 x the seed's own).",
    )
    group.add_argument(
        "--density-min",
        type=t("density", "--density-min"),
        default=None,
        help="Lowest density, g/cm³ (default: the seed's - 10%%).",
    )
    group.add_argument(
        "--density-max",
        type=t("density", "--density-max"),
        default=None,
        help="Highest density, g/cm³ (default: the seed's + 10%%).",
    )
    options.add_descriptor(parser, rescale=False, multicomponent=False)
    options.add_bandwidth(parser, several=False)
    options.add_engine(parser, backends=False)
    options.add_output(parser)


def run(args) -> None:
    import warnings

    from atominfo.cli.load import reference
    from atominfo.cli.report import fmt, print_json, progress, say, table, write_json
    from atominfo.errors import InputError
    from atominfo.outputs.guard import OutputGuard
    from atominfo.workflows.generate import generate, write_candidates

    if args.target_low > args.target_high:
        raise InputError(
            f"--target-low {args.target_low:g} exceeds --target-high {args.target_high:g}"
        )
    if args.min_distance is not None and args.min_distance >= args.cutoff:
        raise InputError(
            f"--min-distance {args.min_distance:g} Å must be below --cutoff {args.cutoff:g} Å"
        )
    if None not in (args.density_min, args.density_max) and args.density_min > args.density_max:
        raise InputError(
            f"--density-min {args.density_min:g} exceeds --density-max {args.density_max:g}"
        )
    density = None
    if args.density_min is not None or args.density_max is not None:
        density = (args.density_min, args.density_max)
    outputs = [(args.output, (".extxyz", ".xyz")), (args.summary, (".json",))]
    with OutputGuard(inputs=[*args.files, *args.ref], outputs=outputs):
        options.apply_threads(args)
        ref = reference(args, args.bandwidth)
        total = args.n_candidates * args.generations * args.steps
        with (
            warnings.catch_warnings(record=True) as caught,
            progress("Monte Carlo steps (at most)", total, args.quiet, "steps") as advance,
        ):
            warnings.simplefilter("always")
            campaign = generate(
                list(map(str, args.files)),
                ref,
                args.n_candidates,
                k=args.k,
                cutoff=args.cutoff,
                generations=args.generations,
                steps=args.steps,
                objective=args.objective,
                target=(args.target_low, args.target_high),
                temperature=(args.temperature_start, args.temperature_end),
                step_size=args.step_size,
                strain=args.strain,
                min_distance=args.min_distance,
                density=density,
                seed=args.seed,
                index=args.index,
                format=args.format,
                type_map=args.type_map,
                progress=advance,
            )
        if not campaign.candidates:
            goal = (
                f"largest dH in [{args.target_low:g}, {args.target_high:g}] nats"
                if args.objective == "target"
                else "a positive entropy gain"
            )
            raise InputError(
                f"no candidate reached the objective ({goal} at --bandwidth "
                f"{args.bandwidth:g} 1/Å) within {args.steps} steps: raise "
                "--steps, widen the target range, or check that the seeds can "
                "approach it"
            )
        for w in caught:
            warnings.warn(str(w.message), stacklevel=1)
        write_candidates(campaign, args.output)
        result = campaign.to_dict()
        result.update(
            {
                "seeds": args.files,
                "reference": args.ref,
                "output": args.output,
                "reference_environments": len(ref),
            }
        )
        if args.summary is not None:
            write_json(args.summary, result)
    if args.json:
        print_json(result)
        return
    c = campaign
    say(
        f"{c.n_candidates} of {c.requested * len(c.generations)} candidates from "
        f"{len(args.files)} seed file(s) against {len(ref)} reference environments "
        f"(objective {c.objective}"
        + (
            f", max dH in [{fmt(c.target[0])}, {fmt(c.target[1])}] nats)"
            if c.objective == "target"
            else ")"
        )
    )
    say(
        f"  {c.steps} Monte Carlo steps, {fmt(c.seconds_per_step * 1e3, 3)} ms per step, "
        f"{c.seconds:.1f} s in all"
    )
    say(
        table(
            ["generation", "candidates", "novelty", "H before", "H after", "H gain"],
            [
                [
                    g["generation"],
                    g["candidates"],
                    fmt(g["novelty"], 4),
                    fmt(g["entropy_before"], 5),
                    fmt(g["entropy_after"], 5),
                    fmt(g["entropy_gain"], 4),
                ]
                for g in c.generations
            ],
            title="campaign (novelty against the dataset and earlier generations; H in nats)",
        )
    )
    say(
        f"  candidates written to {args.output}"
        + (f", summary to {args.summary}" if args.summary else "")
    )
