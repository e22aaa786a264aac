"""Entropy H, diversity D, log n and n of each file and of all together (nats)."""

from __future__ import annotations

from atominfo.cli import options

# An interval this share of [0, log n] wide says little: the output says so.
UNINFORMATIVE = 0.9


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
        "then not computed.",
    )
    options.add_seed(parser, "Seed of the --sample draw.")
    options.add_engine(parser)
    options.add_output(parser)


def run(args) -> None:
    from pathlib import Path

    import numpy as np

    from atominfo import information
    from atominfo.cli.load import describe, species
    from atominfo.cli.report import fmt, print_json, progress, say, table

    options.apply_threads(args)
    h = options.h_value(args)
    engine = options.engine(args)
    sp = species(args, args.files)
    blocks = [describe([f], args, f"descriptors {f.name}", sp) for f in args.files]
    sets = [(str(f), X) for f, X in zip(args.files, blocks)]
    if len(args.files) > 1:
        sets.append(("all", np.concatenate(blocks)))
    rows = []
    wide = []  # sets whose sampled interval spans most of [0, log n]
    for name, X in sets:
        label = Path(name).name
        if args.sample is not None:
            with progress(
                f"sampled entropy {label}", min(args.sample, len(X)), args.quiet, "envs"
            ) as advance:
                est = information.sampled_entropy(
                    X, h, args.sample, args.seed, engine=engine, progress=advance
                )
            if np.any(np.subtract(est.high, est.low) >= UNINFORMATIVE * np.log(len(X))):
                wide.append(label)
            rows.append(
                {
                    "set": name,
                    "n": len(X),
                    "log_n": float(np.log(len(X))),
                    "entropy": est.entropy,
                    "ci95_low": est.low,
                    "ci95_high": est.high,
                    "half_width": est.half_width,
                    "n_samples": est.n_samples,
                    "seed": est.seed,
                    "diversity": None,
                }
            )
            continue
        with progress(f"entropy {label}", len(X), args.quiet, "envs") as advance:
            H, D = information.entropy_and_diversity(X, h, engine=engine, progress=advance)
        rows.append(
            {"set": name, "n": len(X), "log_n": float(np.log(len(X))), "entropy": H, "diversity": D}
        )
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


def _with_interval(estimate, low, high) -> str:
    """'H [low, high]' per bandwidth, comma-separated."""
    import numpy as np

    from atominfo.cli.report import fmt

    triples = zip(np.atleast_1d(estimate), np.atleast_1d(low), np.atleast_1d(high))
    return ", ".join(f"{fmt(e)} [{fmt(lo)}, {fmt(hi)}]" for e, lo, hi in triples)
