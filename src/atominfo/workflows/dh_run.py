"""`atominfo dh` as one function: per-atom dH of a trajectory into resumable outputs.

`run_dh` owns the whole run: the output guard (all or none), the
checkpoint (``resume``), the per-atom and per-frame writers, the plot and
the chemiscope file. The command line parses its options into these
arguments and prints the `DHRun` it returns, so a Python user gets the same
files and numbers as ``atominfo dh -o ... --table ... --resume``::

    from atominfo import Reference
    from atominfo.workflows.dh_run import run_dh

    ref = Reference.from_files(["train.extxyz"], 0.015)
    run = run_dh(["md.extxyz"], ref, output="md_dh.extxyz", table="frames.csv")
    run.novelty, run.to_pandas()  # totals; one row per frame
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from atominfo.errors import InputError
from atominfo.results import Result
from atominfo.settings import DescriptorSpec, Reading

PER_ATOM_SUFFIXES = (".npy", ".json", ".extxyz", ".xyz")
TABLE_SUFFIXES = (".csv", ".json")
PLOT_SUFFIXES = (".png", ".pdf", ".svg")
CHEMISCOPE_SUFFIXES = (".json.gz", ".json")


@dataclass(frozen=True)
class OwnPast:
    """The reference "each frame against all earlier frames of the trajectory".

    Parameters
    ----------
    h : bandwidth(s), 1/Å.
    engine : `atominfo.EngineOptions` for the sums (default: CPU).
    """

    h: Any
    engine: Any = None


@dataclass(frozen=True)
class AtFalseAlarm:
    """A `Reference` whose novelty is decided at a stated false-alarm rate.

    An atom is novel when its conformal p-value is at most `false_alarm`
    (`atominfo.reference.conformal`): of atoms drawn like the reference's, at
    most that fraction is flagged, on average. Made once, it calibrates the
    reference (kept in the Reference; `progress` counts calibration environments)
    and refuses a rate the reference is too small to resolve.

    Parameters
    ----------
    reference : `atominfo.Reference` (not `OwnPast`: its reference changes every frame).
    false_alarm : float in (0, 1).
    progress : callable or None.
    """

    reference: Any
    false_alarm: float
    progress: Callable[[int], None] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.reference, OwnPast):
            raise InputError(
                "a false-alarm rate needs a fixed reference to calibrate: with --ref self "
                "the reference changes every frame"
            )
        calibration = self.reference.calibration(progress=self.progress)
        object.__setattr__(self, "false_alarm", calibration.check_rate(self.false_alarm))


@dataclass
class DHRun(Result):
    """What `run_dh` computed and wrote.

    Attributes
    ----------
    bandwidth : float or list of float, 1/Å.
    frames, environments : frames and environments scored.
    novelty : fraction of environments with dH > 0 (one per bandwidth for several).
    flagged : with `AtFalseAlarm`, the fraction of environments with conformal
        p <= false_alarm (novel at that false-alarm rate), else None.
    false_alarm : the rate, or None.
    max_dH, mean_dH : nats.
    reference_environments : environments of the reference (with `OwnPast`: of
        the whole trajectory but its last frame).
    reference : ``"self"`` with `OwnPast`, else None.
    output, table, plot, chemiscope : the files written (None where not asked).
    resumed : True when the run continued an interrupted one, or found it finished
        (``finished``: nothing was computed).
    species : with a `SpeciesReference`, one dict per species of the run (species,
        atoms, n_reference, novelty, max_dH, mean_dH, status; see
        `atominfo.workflows.species_dh.species_breakdown`), else None. The totals
        then count atoms of absent species novel, with max and mean over the rest.
    species_descriptor : "multicomponent" or "plain" with a `SpeciesReference`.
    per_frame : dict of columns, one row per frame (as in the table file).
    """

    _fields_shown = ("frames", "environments", "novelty", "max_dH", "mean_dH")
    bandwidth: Any
    frames: int
    environments: int
    novelty: Any
    max_dH: Any
    mean_dH: Any
    reference_environments: int
    reference: str | None = None
    flagged: Any = None
    false_alarm: float | None = None
    output: Path | None = None
    table: Path | None = None
    plot: Path | None = None
    chemiscope: Path | None = None
    resumed: bool = False
    finished: bool = False
    species: list | None = None
    species_descriptor: str | None = None
    per_frame: dict = field(default_factory=dict, repr=False)

    def to_pandas(self):
        """The per-frame table as a `pandas.DataFrame` (pandas must be installed)."""
        import pandas as pd

        return pd.DataFrame(self.per_frame)


def run_dh(
    test,
    reference,
    *,
    output=None,
    table=None,
    plot=None,
    chemiscope=None,
    resume: bool = False,
    reading: Reading | None = None,
    spec: DescriptorSpec | None = None,
    progress: Callable[[int], None] | None = None,
) -> DHRun:
    """Per-atom dH of every frame of `test` against `reference`, streamed to files.

    Parameters
    ----------
    test : file path or list of paths (a trajectory, any format ASE reads).
    reference : `atominfo.Reference`, or `OwnPast` to score each frame against all
        earlier frames (frame 0 has no past and is not scored), or `AtFalseAlarm`
        to decide novelty at a stated false-alarm rate (per-atom p-values too), or
        a `atominfo.workflows.species_dh.SpeciesReference` to score each atom
        against the reference atoms of its own species (the table gains columns
        atoms_s, novelty_s, max_dH_s, mean_dH_s per species s).
    output : per-atom dH, .npy, .json or .extxyz (the frames with a 'dH' array;
        with `AtFalseAlarm` also a 'p' array, and .npy is refused).
    table : per-frame table, .csv or .json (with `AtFalseAlarm`, a 'flagged' column).
    plot : figure of the per-frame table, .png, .svg or .pdf.
    chemiscope : frames with per-atom dH for the chemiscope viewer (.json.gz or .json;
        keeps every frame in memory, so it cannot be combined with `resume`).
    resume : continue an interrupted run from its last complete frame
        (`atominfo.runs.checkpoint`; needs `output` or `table`). An interrupted
        run's work is never discarded here: `atominfo.runs.discard` does that.
    reading : which frames of `test` are read (`Reading`).
    spec : descriptor settings (`DescriptorSpec`; default: the reference's).
    progress : called with the number of atoms of each frame read.

    Returns
    -------
    DHRun

    Raises
    ------
    InputError
        Bad input, a refused output, a refused resume (nothing is deleted).
    """
    from atominfo.runs.guard import OutputGuard
    from atominfo.workflows.species_dh import SpeciesReference

    reading = reading or Reading()
    spec = spec or DescriptorSpec()
    test = [str(t) for t in ([test] if isinstance(test, (str, Path)) else test)]
    rate = reference.false_alarm if isinstance(reference, AtFalseAlarm) else None
    reference = reference.reference if isinstance(reference, AtFalseAlarm) else reference
    own_past = isinstance(reference, OwnPast)
    ref_files = [] if own_past else list(getattr(reference, "sources", ()))
    output, table, plot, chemiscope = (
        Path(p) if p is not None else None for p in (output, table, plot, chemiscope)
    )
    if resume and output is None and table is None:
        raise InputError("--resume needs an output (-o) or a table (--table)")
    if resume and chemiscope is not None:
        raise InputError("--chemiscope needs every frame: it cannot be combined with --resume")
    if chemiscope is not None and isinstance(reference, SpeciesReference):
        raise InputError(
            "--species does not take --chemiscope (an absent species' dH is not a number, "
            "which the viewer cannot show)"
        )
    outputs = [
        (output, PER_ATOM_SUFFIXES),
        (table, TABLE_SUFFIXES),
        (plot, PLOT_SUFFIXES),
        (chemiscope, CHEMISCOPE_SUFFIXES),
    ]
    streamed = output is not None or table is not None
    with OutputGuard(
        inputs=[*test, *ref_files], outputs=outputs, resume=resume, resumable=streamed
    ):
        run = _Run(test, reference, reading, spec, progress, rate)
        return run.execute(output, table, plot, chemiscope, resume)


class _Run:
    """One dH run inside its guard: the writer, the frame loop, the plot."""

    def __init__(self, test: list[str], reference, reading, spec, progress, false_alarm=None):
        self.test, self.reference, self.reading, self.spec = test, reference, reading, spec
        from atominfo.workflows.species_dh import SpeciesReference

        self.own_past = isinstance(reference, OwnPast)
        self.by_species = isinstance(reference, SpeciesReference)
        self.h = reference.h
        self.progress = progress
        self.false_alarm: float | None = false_alarm
        self.read = [0, 0]  # atoms read so far, atoms of the last frame read

    def signature(self) -> dict:
        ref = self.reference
        extra = ref.signature() if self.by_species else {}
        if self.own_past:
            source: Any = "self"
        elif self.by_species:
            source = extra.pop("ref")
        else:
            import hashlib

            source = hashlib.sha256(np.ascontiguousarray(ref.X).tobytes()).hexdigest()
        signature = {
            "test": [str(Path(t).resolve()) for t in self.test],
            "ref": source,
            "bandwidth": self.h,
            **self.reading.to_dict(),
            **self.spec.to_dict(),
            **extra,  # (species mode only: earlier checkpoints still match)
        }
        if self.false_alarm is not None:  # (absent otherwise: earlier checkpoints still match)
            signature["false_alarm"] = self.false_alarm
        return signature

    def execute(self, output, table, plot, chemiscope, resume) -> DHRun:
        from atominfo.runs.stream import DHStreamWriter, Totals
        from atominfo.workflows.species_dh import species_columns

        writer = None
        if output is not None or table is not None:
            writer = DHStreamWriter(
                output,
                table,
                self.h,
                self.signature(),
                resume=resume,
                inputs=self.test,
                false_alarm=self.false_alarm,
                columns=species_columns(self.reference.species, self.false_alarm is not None)
                if self.by_species
                else (),
            )
            if writer.finished:  # nothing to resume (the checkpoint warned)
                return self._result(writer.summary(), {}, output, table, None, None, True, True)
        rate = self.false_alarm
        totals = writer.totals if writer is not None else Totals(self.h, false_alarm=rate)
        rows: list[dict] = []
        skip = writer.frames_done if writer is not None else 0
        kept: list[tuple] | None = [] if chemiscope is not None else None
        if skip and not self.own_past and self.progress is not None:
            self.progress(totals.state["atoms"])  # (the own past re-reads the done frames)
        try:
            for frame in self._frames(skip):
                if kept is not None:
                    kept.append((frame.atoms, frame.dH))
                if writer is not None:
                    writer.add(frame)
                else:
                    totals.add(frame.dH, frame.p)
                    rows.append(_row(frame, rate))
            done = writer.frames_done if writer is not None else len(rows)
            if self.own_past and done == 0:
                raise InputError(
                    "--ref self: a single frame has no past to compare with "
                    "(give a trajectory of at least two frames)",
                    source=self.test[0],
                )
        finally:
            if writer is not None:
                writer.close()  # OutputGuard keeps or removes the files (its rules)
        if writer is None:
            summary, columns = totals.summary(len(rows)), _columns(rows, self.h)
        else:
            summary, columns = writer.summary(), writer.read_table()
        if plot is not None:
            self._plot(columns, plot)
        if kept is not None:
            from atominfo.outputs.chemiscope import write_dh_chemiscope

            write_dh_chemiscope(chemiscope, kept, self.h, cutoff=self.spec.cutoff)
        if writer is not None:
            writer.finish()
        return self._result(summary, columns, output, table, plot, chemiscope, bool(skip), False)

    def _frames(self, skip: int):
        from atominfo.workflows.trajectory import iter_self_dh, iter_trajectory_dh

        def counted(n: int) -> None:
            self.read[0] += n
            self.read[1] = n
            if self.progress is not None:
                self.progress(n)

        common: dict[str, Any] = {"reading": self.reading, "spec": self.spec, "progress": counted}
        if self.by_species:
            from atominfo.workflows.species_dh import iter_species_dh

            rate = self.false_alarm
            return iter_species_dh(self.test, self.reference, skip=skip, false_alarm=rate, **common)
        if self.own_past:
            # frame 0 is never scored, so the frames done are frames 1..skip
            engine = self.reference.engine
            return iter_self_dh(
                self.test, self.h, engine=engine, skip=skip + 1 if skip else 0, **common
            )
        p_values = self.false_alarm is not None
        return iter_trajectory_dh(self.test, self.reference, skip=skip, p_values=p_values, **common)

    def _plot(self, columns: dict, path: Path) -> None:
        from atominfo.outputs.plots import plot_trajectory, save_figure
        from atominfo.runs.stream import bandwidth_labels

        against = (
            "its own past"
            if self.own_past
            else _names(getattr(self.reference, "sources", None) or ["the reference"])
        )
        axes = plot_trajectory(
            columns, bandwidth_labels(self.h)[0], title=f"{_names(self.test)} against {against}"
        )
        save_figure(np.ravel(axes)[0].figure, path)

    def _result(
        self, summary, columns, output, table, plot, chemiscope, resumed, finished
    ) -> DHRun:
        if self.own_past:
            reference_environments = self.read[0] - self.read[1]
        else:
            reference_environments = len(self.reference)
        breakdown = None
        if self.by_species:
            from atominfo.workflows.species_dh import species_breakdown, species_totals

            # (a finished run found on resume: its table is not re-read, the totals are
            # not determined here rather than counted without the absent species)
            breakdown = species_breakdown(columns, self.reference) if columns else None
            totals = species_totals(breakdown or [], summary["frames"])
            summary = {**totals, "environments": summary["environments"]}
        return DHRun(
            bandwidth=self.h,
            frames=summary["frames"],
            environments=summary["environments"],
            novelty=summary["novelty"],
            max_dH=summary["max_dH"],
            mean_dH=summary["mean_dH"],
            reference_environments=reference_environments,
            reference="self" if self.own_past else None,
            flagged=summary.get("flagged"),
            false_alarm=self.false_alarm,
            output=output,
            table=table,
            plot=plot,
            chemiscope=chemiscope,
            resumed=resumed,
            finished=finished,
            species=breakdown,
            species_descriptor=self.reference.descriptor if self.by_species else None,
            per_frame=_plain(columns),
        )


def _row(frame, false_alarm: float | None) -> dict:
    """The frame's table row, with the fraction flagged at `false_alarm` where one is set."""
    row = frame.summary()
    if false_alarm is not None and "flagged" not in row:  # (--species frames state theirs)
        from atominfo.reference.conformal import flag

        fractions = flag(np.atleast_2d(frame.p), false_alarm).mean(axis=1)
        row["flagged"] = float(fractions[0]) if np.ndim(frame.dH) == 1 else fractions.tolist()
    return row


def calibration_total(reference) -> int:
    """Calibration environments of `reference` (the calibration's progress total; 0 for
    `OwnPast`, which is never calibrated)."""
    from atominfo.reference.conformal import calibration_size
    from atominfo.workflows.species_dh import SpeciesReference

    if isinstance(reference, OwnPast):
        return 0
    if isinstance(reference, SpeciesReference):
        return reference.calibration_size()
    return calibration_size(len(reference), reference.seed)


def _plain(columns: dict) -> dict:
    return {k: (v.tolist() if isinstance(v, np.ndarray) else list(v)) for k, v in columns.items()}


def _columns(rows: list[dict], h) -> dict:
    """Per-frame columns, named as in the table file, from `FrameDH.summary()` rows."""
    from atominfo.runs.stream import bandwidth_labels

    out: dict = {}
    if not rows:
        return out
    labels = bandwidth_labels(h)
    for key in rows[0]:
        values = [r[key] for r in rows]
        if key in ("novelty", "max_dH", "mean_dH", "flagged"):
            for t, label in enumerate(labels):
                out[f"{key}{label}"] = [v if len(labels) == 1 else v[t] for v in values]
        else:
            out[key] = values
    return out


def _names(paths: Sequence) -> str:
    names = [Path(p).name for p in paths]
    return names[0] if len(names) == 1 else f"{names[0]} and {len(names) - 1} more"
