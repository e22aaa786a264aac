"""`atominfo clusters` as one function: nucleation clusters per frame, into files.

`run_clusters` owns the whole run: the output guard (all or none), the
frames with per-atom dH and cluster numbers (extxyz, for OVITO), the
per-frame table (.csv or .json) and the plot. The command line builds the
references, parses its options into these arguments and prints the
`ClustersRun` it returns, so a Python user gets the same files and numbers
as ``atominfo clusters md.extxyz --ref solid.extxyz --table c.csv -o c.extxyz``::

    from atominfo import Reference
    from atominfo.workflows.clusters_run import run_clusters

    solid = Reference.from_files(["solid.extxyz"], 0.015)
    run = run_clusters(["md.extxyz"], solid, table="c.csv", output="c.extxyz")
    run.largest, run.to_pandas()  # largest cluster (atoms); one row per frame
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from atominfo.outputs.plots import PLOT_SUFFIXES
from atominfo.reference import Reference
from atominfo.results import Result
from atominfo.settings import DescriptorSpec, Reading
from atominfo.workflows.nucleation import (
    ClusterOptions,
    FrameClusters,
    Selectivity,
    iter_trajectory_clusters,
)

TABLE_SUFFIXES = (".csv", ".json")
FRAMES_SUFFIXES = (".extxyz", ".xyz")
# The per-frame table, in column order (`FrameClusters.summary`).
COLUMNS = (
    "frame",
    "source",
    "source_frame",
    "timestep",
    "atoms",
    "solid_like",
    "clusters",
    "largest",
)


@dataclass
class ClustersRun(Result):
    """What `run_clusters` computed and wrote.

    Attributes
    ----------
    bandwidth : float, 1/Å.
    edge_length : Å. method : the cluster definition (`ClusterOptions`).
    liquid_reference : whether solid-like atoms were also closer to the solid than
        to a liquid reference.
    frames : frames read. largest : the largest cluster of any frame, atoms.
    selectivity : how selective the references are (`nucleation.Selectivity`,
        measured on the first frame or the liquid reference): clusters up to
        its `chance_largest` atoms are what a melt with no crystal would show.
    references : how the references are named (plot title, text table).
    per_frame : one row (dict) per frame: frame (over all inputs, from 0), source,
        source_frame (the frame's number in its file), timestep (None where
        unknown), atoms, solid_like, clusters, largest.
    table, output, plot : the files written (None where not asked).
    """

    _fields_shown = (
        "method",
        "edge_length",
        "liquid_reference",
        "frames",
        "largest",
        "selectivity",
    )
    bandwidth: float
    edge_length: float
    method: str
    liquid_reference: bool
    frames: int
    largest: int
    selectivity: Selectivity | None = None
    references: str = ""
    per_frame: list[dict] = field(default_factory=list, repr=False)
    table: Path | None = None
    output: Path | None = None
    plot: Path | None = None

    def title(self) -> str:
        """What the clusters are and against which references (plot and table title)."""
        rule = "dH <= 0" + (
            ", closer to the solid than the liquid" if self.liquid_reference else ""
        )
        return (
            f"{self.method} clusters of solid-like atoms ({rule}; h = {self.bandwidth:g} 1/Å, "
            f"edges <= {self.edge_length:g} Å)\nagainst {self.references}"
        )

    def columns(self) -> dict[str, list]:
        """The per-frame table as lists, one per column (as in the table file)."""
        return {name: [row.get(name) for row in self.per_frame] for name in COLUMNS}

    def to_pandas(self):
        """The per-frame table as a `pandas.DataFrame`, one row per frame."""
        from atominfo.outputs.tables import data_frame

        return data_frame(self.columns(), "ClustersRun")

    def _repr_html_(self) -> str:
        from atominfo.outputs.tables import html_table

        caption = (
            f"ClustersRun: {self.method} clusters, largest {self.largest} atoms "
            f"(h = {self.bandwidth} 1/Å, edges <= {self.edge_length} Å)"
        )
        return html_table(self.columns(), caption)


def output_checks(table=None, output=None, plot=None) -> list[tuple]:
    """The (path, allowed suffixes) pairs of a run's outputs, for
    `atominfo.runs.guard.check_outputs` (the command checks them before it
    builds the references)."""
    return [(table, TABLE_SUFFIXES), (output, FRAMES_SUFFIXES), (plot, PLOT_SUFFIXES)]


def run_clusters(
    test,
    reference: Reference,
    *,
    liquid_reference: Reference | None = None,
    options: ClusterOptions | None = None,
    table=None,
    output=None,
    plot=None,
    reading: Reading | None = None,
    spec: DescriptorSpec | None = None,
    progress: Callable[[int], None] | None = None,
) -> ClustersRun:
    """Clusters of solid-like atoms in every frame of `test`, into a table, frames, a plot.

    Parameters
    ----------
    test : file path or list of paths (a trajectory, any format ASE reads).
    reference : `atominfo.Reference` of the solid (one bandwidth).
    liquid_reference : `atominfo.Reference` of the liquid, optional (see
        `iter_trajectory_clusters`).
    options : `ClusterOptions`: edge length, method, smallest size, the
        solid-fraction warning, and n* for the plot.
    table : per-frame table, .csv or .json (the JSON also records the options).
    output : the frames with per-atom 'dH' (nats), 'dH_liquid' with a liquid
        reference, and 'cluster' (1 = largest, 0 = none) arrays, .extxyz or .xyz.
    plot : largest cluster and number of clusters against frame, .png, .pdf or .svg.
    reading : which frames of `test` are read (`Reading`).
    spec : descriptor settings (`DescriptorSpec`; default: the reference's).
    progress : called with the number of atoms of each frame done.

    Returns
    -------
    ClustersRun

    Raises
    ------
    InputError
        Bad input or a refused output (then no output is written).
    """
    from atominfo.runs.guard import OutputGuard

    options = options if options is not None else ClusterOptions()
    test = [str(t) for t in ([test] if isinstance(test, (str, Path)) else test)]
    table, output, plot = (Path(p) if p is not None else None for p in (table, output, plot))
    references = [r for r in (reference, liquid_reference) if r is not None]
    sources = [s for r in references for s in getattr(r, "sources", ())]
    with OutputGuard(inputs=[*test, *sources], outputs=output_checks(table, output, plot)):
        frames = iter_trajectory_clusters(
            test,
            reference,
            liquid_reference=liquid_reference,
            options=options,
            reading=reading,
            spec=spec,
            progress=progress,
        )
        rows, selectivity = _rows(frames, output)
        result = ClustersRun(
            bandwidth=reference.h,
            edge_length=options.edge_length,
            method=options.method,
            liquid_reference=liquid_reference is not None,
            frames=len(rows),
            largest=max(row["largest"] for row in rows),
            selectivity=selectivity,
            references=options.references or _named(reference, liquid_reference),
            per_frame=rows,
            table=table,
            output=output,
            plot=plot,
        )
        if table is not None:
            _write_table(result, table)
        if plot is not None:
            from atominfo.outputs.plots import plot_clusters, save_figure

            axes = plot_clusters(
                result.columns(), options.n_star, x=_x_axis(rows), title=result.title()
            )
            save_figure(np.ravel(axes)[0].figure, plot)
    return result


def _named(reference: Reference, liquid: Reference | None) -> str:
    """The references by their sizes (when the caller gives no names)."""
    names = f"solid reference ({len(reference)} environments)"
    return names + (f", liquid reference ({len(liquid)})" if liquid is not None else "")


def _x_axis(rows: list[dict]) -> str | None:
    """The plot's x: the timestep when every frame has one (None: the plot's default),
    else the frame's number in its file when all come from one file."""
    if all(row["timestep"] is not None for row in rows):
        return None
    return "source_frame" if len({row["source"] for row in rows}) == 1 else "frame"


def _rows(frames, output: Path | None) -> tuple[list[dict], Selectivity | None]:
    """The table rows of `frames` and the first frame's selectivity, each frame appended
    to `output` (extxyz) as it comes."""
    import ase.io

    from atominfo.runs.atomic import atomic_output

    rows, selectivity = [], None
    with contextlib.ExitStack() as stack:
        staged = stack.enter_context(atomic_output(output)) if output is not None else None
        for frame in frames:
            rows.append(frame.summary())
            selectivity = selectivity or frame.selectivity
            if staged is not None:
                with open(staged, "a") as fh:
                    ase.io.write(fh, _labelled(frame), format="extxyz")
    return rows, selectivity


def _labelled(frame: FrameClusters):
    """The frame's atoms with per-atom 'dH', 'dH_liquid' (if any) and 'cluster' arrays."""
    atoms = frame.atoms.copy()
    atoms.set_array("dH", frame.dH)
    if frame.dH_liquid is not None:
        atoms.set_array("dH_liquid", frame.dH_liquid)
    atoms.set_array("cluster", frame.labels())
    return atoms


def _write_table(result: ClustersRun, path: Path) -> None:
    from atominfo.outputs.tables import write_csv, write_json

    if path.suffix == ".json":
        settings = {
            "bandwidth": result.bandwidth,
            "edge_length": result.edge_length,
            "method": result.method,
            "liquid_reference": result.liquid_reference,
            "references": result.references,
            "selectivity": result.selectivity,
        }
        write_json(path, {**settings, **result.columns()})
    else:
        write_csv(path, COLUMNS, result.per_frame)
