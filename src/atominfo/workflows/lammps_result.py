"""What a monitored LAMMPS script did: `ScriptRun`, its table of checks, its words.

`run_script` (`atominfo.workflows.lammps`) returns a `ScriptRun`, or raises
`ScriptInterrupted` carrying one; `write_checks_table` writes its checks as
the table of ``atominfo lammps --table``, and `check_line` and
`ScriptRun.summary` are the lines the command prints.
"""

from __future__ import annotations

import math
import signal
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from atominfo.results import Result
from atominfo.workflows.monitor import MonitorRecord

__all__ = [
    "CHECK_COLUMNS",
    "CHECK_HEADER",
    "TABLE_SUFFIXES",
    "ScriptInterrupted",
    "ScriptRun",
    "check_columns",
    "check_line",
    "write_checks_table",
]

TABLE_SUFFIXES = (".csv", ".json")
# The columns of the table of the checks (`write_checks_table`): "check" is a
# record's `step`, the check number.
CHECK_COLUMNS = ("check", "timestep", "time", "atoms", "novelty", "max_dH", "mean_dH", "seconds")
# The head of the lines of `check_line`.
CHECK_HEADER = (
    f"{'timestep':>10}  {'atoms':>7}  {'novel %':>8}  {'max dH':>9}  {'mean dH':>9}  {'ms':>7}"
)


class ScriptInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped `run_script` cleanly; `result` holds the checks made.

    Attributes
    ----------
    result : ScriptRun, with ``interrupted`` True
    signum : int, the signal
    """

    def __init__(self, result: ScriptRun, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.result, self.signum = result, signum


@dataclass
class ScriptRun(Result):
    """What `run_script` did.

    Attributes
    ----------
    script : str, the input script
    completed : bool, whether every command ran (False when halted or interrupted)
    halted : dict or None
        The check that halted the run (as `MonitorRecord.as_dict`).
    halt_line : int or None
        The script line where it stopped: the run that was halted, or the
        command during which a signal came.
    interrupted : bool
        Whether SIGINT or SIGTERM stopped it (then `checks` are those made
        up to that point; see `ScriptInterrupted`).
    checks : list of dict
        Every check: step (check number), timestep, time (ps for units
        metal, fs for real), atoms, novelty (fraction with dH > 0, or with
        p <= false_alarm),
        max_dH and mean_dH (nats; None where a check does not determine
        them, see `MonitorOptions.exact_dH`), seconds.
    crossed : int, number of checks that crossed a threshold
    extract : str or None, the file of the extracted frames
    extracted : int, structures written to it: whole frames or cut-outs (`extract_mode`)
    seconds_per_check : float or None, mean wall time of a check, s
    table : str or None, the file of the table of the checks
    extract_mode : str, what was extracted of a crossing frame ("frame", or a cut-out mode)
    false_alarm : float or None, the rate: a check's novelty is then the fraction
        with conformal p <= it (`MonitorOptions.false_alarm`)
    """

    _fields_shown = (
        "script",
        "completed",
        "halted",
        "interrupted",
        "crossed",
        "extracted",
        "seconds_per_check",
    )
    script: str
    completed: bool
    halted: dict | None = None
    halt_line: int | None = None
    interrupted: bool = False
    checks: list = field(default_factory=list)
    crossed: int = 0
    extract: str | None = None
    extracted: int = 0
    seconds_per_check: float | None = None
    table: str | None = None
    extract_mode: str = "frame"
    false_alarm: float | None = None

    def summary(self) -> list[str]:
        """What the run did and wrote, in a few lines (as ``atominfo lammps`` says it)."""
        n = len(self.checks)
        per_check = (
            f", {1e3 * self.seconds_per_check:.3g} ms per check"
            if self.seconds_per_check is not None
            else ""
        )
        lines = [f"{_count(n, 'check')}{per_check}; {self.crossed} crossed a threshold"]
        if n == 0:
            lines.append("no check ran: the script ran no MD step after creating its box")
        if self.extracted:
            lines.append(
                f"{_count(self.extracted, self._extracted_kind)} written to {self.extract}"
            )
        elif self.extract is not None:
            why = "no frame crossed a threshold" if not self.crossed else "no atom with dH > 0"
            lines.append(f"{why}: {self.extract} not written")
        if self.table is not None:
            lines.append(f"table of the checks written to {self.table}")
        return lines

    @property
    def _extracted_kind(self) -> str:
        return "frame" if self.extract_mode == "frame" else "cut-out"

    def interruption(self) -> str:
        """Where an interrupted run stopped and what its outputs hold, in one line."""
        if self.completed:
            where = "interrupted after the script ended"
        elif self.halt_line is not None:
            where = f"interrupted at {self.script} line {self.halt_line}"
        else:
            where = "interrupted"
        n = len(self.checks)
        said = [f"{where}, after {_count(n, 'check')}"]
        if self.table is not None:
            said.append(
                f"{self.table} holds the checks up to timestep {self.checks[-1]['timestep']}"
                if n
                else f"{self.table} holds no check"
            )
        if self.extracted:
            said.append(f"{_count(self.extracted, self._extracted_kind)} written to {self.extract}")
        return "; ".join(said)

    def columns(self) -> dict[str, list]:
        """The table of the checks as lists, one per column of `CHECK_COLUMNS` (as in the
        table file)."""
        return check_columns(self.checks)

    def to_pandas(self):
        """The checks as a `pandas.DataFrame`, one row per check."""
        from atominfo.outputs.tables import data_frame

        return data_frame(self.columns(), "ScriptRun")

    def _repr_html_(self) -> str:
        from atominfo.outputs.tables import html_table

        state = "completed" if self.completed else f"stopped at line {self.halt_line}"
        caption = f"ScriptRun: {self.script} {state}, {_count(len(self.checks), 'check')}"
        return html_table(self.columns(), caption)


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}{'s' if n != 1 else ''}"


def check_line(record: MonitorRecord) -> str:
    """One check as a line under `CHECK_HEADER` (as ``atominfo lammps`` prints it): timestep,
    atoms, novel %, max and mean dH (nats), ms; pass ``lambda r: print(check_line(r))``
    as `run_script`'s `on_check` to print them."""
    return (
        f"{record.timestep:>10}  {record.atoms:>7}  "
        f"{_number(100 * record.novelty, 4):>8}  {_number(record.max_dH, 4):>9}  "
        f"{_number(record.mean_dH, 4):>9}  {1e3 * record.seconds:>7.1f}"
    )


def _number(value, digits: int) -> str:
    """`value` to `digits` significant digits, '-' where it is not a finite number."""
    return f"{value:.{digits}g}" if value is not None and math.isfinite(value) else "-"


def check_columns(checks: Sequence[dict]) -> dict[str, list]:
    """Checks (`MonitorRecord.as_dict`) as lists, one per column of `CHECK_COLUMNS`, then
    one per further key of the checks (a species-resolved run: absent, novelty_<species>)."""
    known = set(CHECK_COLUMNS) | {"step"}
    extra = list(dict.fromkeys(key for check in checks for key in check if key not in known))
    return {
        name: [check.get("step" if name == "check" else name) for check in checks]
        for name in (*CHECK_COLUMNS, *extra)
    }


def write_checks_table(path, checks: Sequence[dict]) -> None:
    """The checks (`ScriptRun.checks`) as a table file: .json (one list per column) or
    .csv (a header line, then one line per check; empty where a value is missing).

    The columns are `CHECK_COLUMNS` (and those `check_columns` adds). Written
    atomically (`atominfo.runs.atomic`): inside an `OutputGuard`, committed with the
    run's other outputs.
    """
    from atominfo.outputs.tables import write_csv, write_json

    columns = check_columns(checks)
    if Path(path).suffix == ".json":
        write_json(path, columns)
    else:
        rows = [dict(zip(columns, row, strict=True)) for row in zip(*columns.values())]
        write_csv(path, list(columns), rows)
