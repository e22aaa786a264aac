"""Biased MD toward environments new to a dataset, from each seed structure; resumable.

Langevin MD with a physical force field (EMT, or any ASE calculator named as
module:name) plus a bias force along the gradient of the structure's novelty
against the reference. Every --interval steps, a structure whose largest dH
reaches --target-dH is written as a snapshot (with the unbiased forces, the
bias forces and per-atom dH kept apart, the energies and its provenance) and
joins the reference. An interrupted run continues from its last checkpoint
with --resume, to the same bytes as an uninterrupted one.
"""

from __future__ import annotations

from pathlib import Path

from atominfo.cli import options

MD = {
    "--temperature": ("md_temperature", 300.0, "Langevin thermostat temperature, K."),
    "--steps": ("md_steps", 1000, "MD steps from each seed structure (at most)."),
    "--timestep": ("md_timestep", 2.0, "MD time step, fs."),
    "--friction": ("md_friction", 0.02, "Langevin friction, in ASE's inverse time unit."),
    "--interval": ("interval", 10, "Steps between novelty checks."),
    "--weight": ("bias_weight", 0.1, "Bias strength, eV per nat of novelty (0: plain MD)."),
    "--objective": (
        "novelty_objective",
        "max",
        "What the bias climbs: the largest (max), summed or mean per-atom dH, or entropy_gain.",
    ),
    "--max-bias-force": ("max_bias_force", 1.0, "Largest bias force on one atom, eV/Å."),
    "--target-dH": (
        "alarm_dh",
        0.0,
        "Snapshot when the largest dH reaches this, nats (default 0).",
    ),
    "--snapshots": ("interval", None, "Most snapshots from each seed (default: no limit)."),
}


def add_arguments(parser) -> None:
    options.add_inputs(parser, help="Seed structure files (--index selects frames).")
    options.add_reference(parser)
    text = "Snapshots as .extxyz: unbiased_forces, bias_forces, dH arrays; provenance in info."
    parser.add_argument("-o", "--output", type=Path, required=True, help=text)
    parser.add_argument(
        "--calculator",
        default="emt",
        metavar="SPEC",
        help="Physical force field: emt, or module:name, an ASE calculator or a class or "
        "function returning one (e.g. mypackage.potentials:make_calculator).",
    )
    group = parser.add_argument_group("molecular dynamics and bias")
    for flag, (kind, default, text) in MD.items():
        kind = options.typed(kind, flag)
        dest = flag[2:].replace("-", "_").lower()
        group.add_argument(flag, dest=dest, type=kind, default=default, help=text)
    options.add_seed(parser, "Random seed (initial velocities, thermostat): same seed, same bytes.")
    options.add_resume(parser, "checkpoint")
    parser.add_argument(
        "--checkpoint-every",
        type=options.typed("interval", "--checkpoint-every"),
        default=100,
        metavar="STEPS",
        help="MD steps between checkpoints (a multiple of --interval; each costs one more "
        "force evaluation); a resume redoes at most this many steps.",
    )
    options.add_descriptor(parser, rescale=False, multicomponent=False)
    options.add_bandwidth(parser, several=False)
    options.add_engine(parser, backends=False)
    options.add_output(parser)


def run(args) -> None:
    from atominfo.cli.report import fmt, print_json, progress, say
    from atominfo.runs.guard import check_outputs, discard
    from atominfo.settings import Reading
    from atominfo.workflows.explore import BiasOptions, ExploreOptions
    from atominfo.workflows.explore_run import OUTPUT_SUFFIXES, explore_run

    # refuse an output that is an input (or unwritable) before any work
    check_outputs(inputs=[*args.files, *args.ref], outputs=[(args.output, OUTPUT_SUFFIXES)])
    bias = BiasOptions(
        weight=args.weight,
        objective=args.objective,
        max_bias_force=args.max_bias_force,
        h=args.bandwidth,
        k=args.k,
        cutoff=args.cutoff,
    )
    settings = ExploreOptions(
        temperature=args.temperature,
        steps=args.steps,
        timestep_fs=args.timestep,
        friction=args.friction,
        seed=args.seed,
        interval=args.interval,
        target=args.target_dh,
        max_snapshots=args.snapshots,
        bias=bias,
    )
    if args.restart:
        discard([args.output])
    options.apply_threads(args)
    with progress("MD steps", None, args.quiet, "steps") as advance:
        result = explore_run(
            list(map(str, args.files)),
            list(map(str, args.ref)),
            args.output,
            calculator=args.calculator,
            options=settings,
            reading=Reading(args.index, args.format, args.type_map),
            resume=args.resume,
            checkpoint_every=args.checkpoint_every,
            progress=advance,
        )
    if result.finished:
        return
    if args.json:
        print_json(result.to_dict())
        return
    say(
        f"{result.snapshots} snapshots from {result.seeds} seed structure(s) against "
        f"{result.reference_environments} reference environments "
        f"(target dH {fmt(result.target)} nats)"
    )
    say(f"  largest dH reached: {fmt(result.max_dH)} nats")
    say(f"  {result.steps} MD steps in {result.seconds:.1f} s")
    say(f"  snapshots written to {result.output}")
