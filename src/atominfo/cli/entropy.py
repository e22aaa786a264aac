"""Entropy H, diversity D, log n and n of each file and of all together (nats)."""

from __future__ import annotations

from contextlib import ExitStack, contextmanager
from pathlib import Path

from atominfo.cli import options
from atominfo.cli import species as species_mode


def add_arguments(parser) -> None:
    options.add_inputs(parser)
    options.add_descriptor(parser)
    options.add_bandwidth(parser)
    parser.add_argument(
        "--sample",
        type=options.typed("n_samples", "--sample"),
        default=None,
        metavar="M",
        help="Estimate H from M random environments (each "
        "against all n) with a 95%% confidence interval for the H of all n "
        "(coverage at least 95%% for any data; wide when M is small); D is "
        "then not computed. With --species: M environments of each species, "
        "the intervals of a set holding together at 95%% (Bonferroni).",
    )
    options.add_seed(parser, "Seed of the --sample draw.")
    options.add_engine(parser)
    options.add_output(parser)
    species_mode.add_species(parser)


def run(args) -> None:
    import numpy as np

    from atominfo.cli.load import describe, note_pooled_species, species
    from atominfo.cli.report import fmt, print_json, say, table
    from atominfo.workflows.metrics import entropy_table

    options.apply_threads(args)
    if species_mode.wanted(args):
        return species_mode.entropy(args)
    h = options.h_value(args)
    engine = options.engine(args)
    sp = species(args, args.files)
    held: list[set[str]] = [set() for _ in args.files]  # each file's elements
    blocks = [
        describe([f], args, f"descriptors {f.name}", sp, elements=e)
        for f, e in zip(args.files, held)
    ]
    if not sp:
        for f, e in zip(args.files, held):
            note_pooled_species(f, e)
    sets = [(str(f), X) for f, X in zip(args.files, blocks)]
    if len(args.files) > 1:
        sets.append(("all", np.concatenate(blocks)))
    with _bars(args, sets) as advance:
        entropies = entropy_table(
            sets, h, sample=args.sample, seed=args.seed, engine=engine, progress=advance
        )
    rows = entropies.rows
    wide = [Path(name).name for name in entropies.wide]
    result = {"bandwidth": h, "k": args.k, "cutoff": args.cutoff, "results": rows}
    if args.sample is not None:
        result.update(sample=args.sample, seed=args.seed)
    if args.json:
        print_json(result)
        return
    body = []
    for r in rows:
        if args.sample is not None:  # the interval need not be centred on the estimate
            H = _with_interval(r["entropy"], r["ci95_low"], r["ci95_high"])
        else:
            H = fmt(r["entropy"])
        body.append([r["set"], r["n"], f"{r['log_n']:.4f}", H, fmt(r["diversity"])])
    say(
        table(
            ["set", "n", "log n (nats)", "H (nats)", "D (nats)"],
            body,
            title=f"information content (h = {fmt(h)} 1/Å, k = {args.k}, rc = {args.cutoff} Å)",
        )
    )
    if args.sample is not None:
        say(
            f"H estimated from {min(args.sample, rows[0]['n'])} random environments per set "
            f"(seed {args.seed}); [low, high] is a 95% confidence interval for the H of the "
            "whole set (valid for any data; few samples give a wide one)"
        )
        if wide:
            say(
                f"note: {args.sample} samples leave H almost anywhere in [0, log n] for "
                f"{', '.join(wide)}: use a larger --sample"
            )


@contextmanager
def _bars(args, sets):
    """``advance(set name, n)``: one progress bar per set, opened when it starts (n = 0)."""
    from atominfo.cli.report import progress

    sizes = iter([len(X) for _, X in sets])
    with ExitStack() as stack:
        step: list = []

        def advance(name: str, n: int) -> None:
            if n == 0:  # the next set starts
                stack.close()
                label, size = Path(name).name, next(sizes)
                if args.sample is None:
                    bar = progress(f"entropy {label}", size, args.quiet, "envs")
                else:
                    total = min(args.sample, size)
                    bar = progress(f"sampled entropy {label}", total, args.quiet, "envs")
                step[:] = [stack.enter_context(bar)]
                return
            step[0](n)

        yield advance


def _with_interval(estimate, low, high) -> str:
    """'H [low, high]' per bandwidth, comma-separated."""
    import numpy as np

    from atominfo.cli.report import fmt

    triples = zip(np.atleast_1d(estimate), np.atleast_1d(low), np.atleast_1d(high))
    return ", ".join(f"{fmt(e)} [{fmt(lo)}, {fmt(hi)}]" for e, lo, hi in triples)
