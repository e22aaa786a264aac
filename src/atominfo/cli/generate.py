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

# Help of the Monte Carlo and the constraint options. Their ranges are `atominfo.params`'
# (named in RANGES, else as the option), their defaults `GenerateOptions`' (constraints: none).
MONTE_CARLO = {
    "--generations": "Rounds; each is judged against the dataset and all earlier candidates.",
    "--steps": "Most Monte Carlo steps per candidate.",
    "--objective": "target: largest dH into [--target-low, --target-high]; "
    "entropy: maximise the dataset's entropy gain.",
    "--target-low": "Lower end of the target range of the largest dH, nats.",
    "--target-high": "Upper end of the target range of the largest dH, nats.",
    "--temperature-start": "Annealing temperature at the first step, nats.",
    "--temperature-end": "Annealing temperature at the last step, nats.",
    "--moves": "single: one atom displaced at random per step; gradient: all atoms (and the "
    "cell) along the objective's gradient plus noise. Same constraints and acceptance.",
    "--step-size": "Standard deviation of an atomic displacement, Å (gradient: the "
    "displacement of the atom moved most).",
    "--strain": "Standard deviation of a cell-strain component (periodic cells; 0: no cell moves).",
    "--noise": "gradient moves: random part per coordinate, as a fraction of --step-size.",
}
CONSTRAINTS = {
    "--min-distance": "Smallest interatomic distance, Å, periodic images "
    "included (default: 0.8 x the seed's own).",
    "--density-min": "Lowest density, g/cm³ (default: the seed's - 10%%).",
    "--density-max": "Highest density, g/cm³ (default: the seed's + 10%%).",
}
RANGES = dict(steps="mc_steps", strain="mc_strain", target_low="target_dh", target_high="target_dh")
RANGES.update(noise="gradient_noise")
RANGES.update(temperature_start="mc_temperature", temperature_end="mc_temperature")
RANGES.update(density_min="density", density_max="density")


def add_arguments(parser) -> None:
    from atominfo.workflows.generate_options import GenerateOptions

    t = options.typed
    options.add_inputs(parser, help="Seed structure files (--index selects frames).")
    options.add_reference(parser)
    kind = t("n_candidates", "--n-candidates")
    parser.add_argument(
        "-n", "--n-candidates", type=kind, default=10, help="Candidates per generation."
    )
    text = "Candidates as .extxyz: provenance in info, per-atom 'dH' array."
    parser.add_argument("-o", "--output", type=Path, required=True, help=text)
    text = "Campaign summary as JSON (per generation: candidates, novelty, entropy gain)."
    parser.add_argument("--summary", type=Path, default=None, help=text)
    o = GenerateOptions()
    defaults = {**vars(o), "target_low": o.target[0], "target_high": o.target[1]}
    defaults.update(temperature_start=o.temperature[0], temperature_end=o.temperature[1])
    _add(parser.add_argument_group("Monte Carlo"), MONTE_CARLO, defaults)
    options.add_seed(parser, "Random seed: the same inputs and seed give identical output.")
    _add(parser.add_argument_group("constraints (always enforced)"), CONSTRAINTS, {})
    options.add_descriptor(parser, rescale=False, multicomponent=False)
    options.add_bandwidth(parser, several=False)
    options.add_engine(parser, backends=False)
    options.add_output(parser)


def _add(group, helps: dict, defaults: dict) -> None:
    for flag, text in helps.items():
        dest = flag[2:].replace("-", "_")
        kind = options.typed(RANGES.get(dest, dest), flag)
        group.add_argument(flag, type=kind, default=defaults.get(dest), help=text)


def run(args) -> None:
    from atominfo.cli.load import reference
    from atominfo.cli.report import print_json, progress
    from atominfo.runs.guard import check_outputs
    from atominfo.settings import DescriptorSpec, Reading
    from atominfo.workflows.generate import generate
    from atominfo.workflows.generate_options import CampaignFiles, options_from_command_line

    settings = options_from_command_line(args)
    files = CampaignFiles(args.output, args.summary, tuple(args.ref))
    # refuse an output that is an input (or unwritable) before the reference is built
    check_outputs(inputs=[*args.files, *args.ref], outputs=files.outputs())
    options.apply_threads(args)
    ref = reference(args, args.bandwidth)
    total = args.n_candidates * args.generations * args.steps
    with progress("Monte Carlo steps (at most)", total, args.quiet, "steps") as advance:
        campaign = generate(
            list(map(str, args.files)),
            ref,
            args.n_candidates,
            options=settings,
            spec=DescriptorSpec(args.k, args.cutoff),
            reading=Reading(args.index, args.format, args.type_map),
            files=files,
            progress=advance,
        )
    if args.json:
        print_json(campaign.to_dict())
        return
    _print(campaign, len(args.files))


def _print(c, n_seed_files: int) -> None:
    from atominfo.cli.report import fmt, say, table

    goal = (
        f", max dH in [{fmt(c.target[0])}, {fmt(c.target[1])}] nats"
        if c.objective == "target"
        else ""
    )
    say(
        f"{c.n_candidates} of {c.requested * len(c.generations)} candidates from "
        f"{n_seed_files} seed file(s) against {c.reference_environments} reference "
        f"environments (objective {c.objective}{goal})"
    )
    say(
        f"  {c.steps} Monte Carlo steps, {fmt(c.seconds_per_step * 1e3, 3)} ms per step, "
        f"{c.seconds:.1f} s in all"
    )
    digits = {"novelty": 4, "entropy_before": 5, "entropy_after": 5, "entropy_gain": 4}
    rows = [
        [g["generation"], g["candidates"], *(fmt(g[k], d) for k, d in digits.items())]
        for g in c.generations
    ]
    headers = ["generation", "candidates", "novelty", "H before", "H after", "H gain"]
    title = "campaign (novelty against the dataset and earlier generations; H in nats)"
    say(table(headers, rows, title=title))
    say(f"  candidates written to {c.output}" + (f", summary to {c.summary}" if c.summary else ""))
