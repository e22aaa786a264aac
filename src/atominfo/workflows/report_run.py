"""`atominfo report` as one function: measure a dataset and write its page and chemiscope file.

`run_report` owns the run: the output guard (all outputs or none), the
measurements (`atominfo.workflows.report.dataset_report`), the HTML page
(`atominfo.outputs.html`) and, when asked, the chemiscope file. The command
line parses its options into these arguments and prints the `DatasetReport`
it returns, so a Python user gets the same page as
``atominfo report train.extxyz -o report.html``::

    from atominfo import load_frames
    from atominfo.workflows.report_run import ReportOutputs, run_report

    report = run_report(load_frames("train.extxyz"), 0.015,
                        outputs=ReportOutputs("report.html"), group_by="config_type")
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from atominfo.information import DEFAULT_BANDWIDTH
from atominfo.outputs.chemiscope import DEFAULT_CUTOFF, write_report_chemiscope
from atominfo.outputs.html import write_report_html
from atominfo.runs.guard import OutputGuard
from atominfo.structures.frameset import FrameSet
from atominfo.workflows.report import DatasetReport, ReportOptions, dataset_report

PAGE_SUFFIXES = (".html", ".htm")
CHEMISCOPE_SUFFIXES = (".json.gz", ".json")


@dataclass(frozen=True)
class ReportOutputs:
    """Where `run_report` writes.

    Parameters
    ----------
    page : the self-contained HTML page (.html or .htm).
    chemiscope : the structures with their per-structure and per-atom values for
        the chemiscope viewer (.json.gz or .json), optional.
    chemiscope_cutoff : radius (Å) of the environment the viewer draws around an
        atom (the descriptor cutoff).
    title : the page's title (default: ``provenance["title"]``, else "dataset").
    """

    page: Path
    chemiscope: Path | None = None
    chemiscope_cutoff: float = DEFAULT_CUTOFF
    title: str | None = None

    def checked(self) -> list[tuple[Path | None, tuple[str, ...]]]:
        """(path, allowed suffixes) of each output, for `atominfo.runs.guard`."""
        return [(Path(self.page), PAGE_SUFFIXES), (self.chemiscope, CHEMISCOPE_SUFFIXES)]


def run_report(
    data: FrameSet,
    h: float = DEFAULT_BANDWIDTH,
    options: ReportOptions | None = None,
    *,
    outputs: ReportOutputs,
    group_by: str | None = None,
    reference=None,
    provenance: Mapping | None = None,
    engine=None,
    progress: Callable[[str], None] | None = None,
) -> DatasetReport:
    """`dataset_report` of `data`, written as a page (and a chemiscope file), all or none.

    Parameters are those of `dataset_report`; `outputs` says where to write.
    """
    inputs = list(dict.fromkeys(data.sources))
    with OutputGuard(inputs=inputs, outputs=outputs.checked()):
        report = dataset_report(
            data,
            h,
            options,
            group_by=group_by,
            reference=reference,
            engine=engine,
            progress=progress,
            provenance=provenance,
        )
        write_report_html(outputs.page, report, title=outputs.title)
        if outputs.chemiscope is not None:
            write_report_chemiscope(outputs.chemiscope, report, cutoff=outputs.chemiscope_cutoff)
    return report
