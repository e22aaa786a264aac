"""What `LammpsMonitor` writes of a frame that crossed a threshold: cut-outs, or the frame.

By default the novel environments of the frame (dH > 0, as computed by the
check; NaN where not computed, inside the domain, as info 'dH_nan' says) are
cut out by `atominfo.workflows.labelling.extract`, the code of ``atominfo extract``:
deduplicated, at most ``max_picks`` per mode, each
centre atom's descriptor checked against the frame's. ``extract_mode
"frame"`` writes the whole frame instead (positions wrapped into the box by
the check). Every structure carries its provenance: the script (``source``),
the reference (files, environments, ``reference_sha256``) and the step.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from ase import Atoms

from atominfo.reference import Reference
from atominfo.settings import DescriptorSpec
from atominfo.workflows.lammps_options import MonitorOptions
from atominfo.workflows.monitor import MonitorRecord

__all__ = ["NOT_COMPUTED", "CrossingExtractor"]

# What a NaN dH means, in the info of every structure extracted with one ('dH_nan').
NOT_COMPUTED = "not computed: inside the reference's domain (dH <= 0)"


class CrossingExtractor:
    """The structures extracted from the crossing frames of a run, rewritten whole to
    `path` (atomically; inside an `OutputGuard`, committed with the run) at each frame.

    Attributes
    ----------
    structures : list of ase.Atoms written so far
    frames : int, the crossing frames they come from
    """

    def __init__(
        self, path: Path, reference: Reference, options: MonitorOptions, spec: DescriptorSpec
    ):
        self.path, self.reference, self.options, self.spec = path, reference, options, spec
        self.source = "<lammps>"  # `run_script` names its script
        self.structures: list[Atoms] = []
        self.frames = 0
        self._fingerprint: str | None = None

    def provenance(self, record: MonitorRecord) -> dict:
        """The ``info`` entries of every structure extracted from the frame of `record`."""
        from atominfo.workflows.labelling_novel import reference_fingerprint

        if self._fingerprint is None:  # hashing the reference once per run
            digest = getattr(self.reference, "digest", "")  # a SpeciesReference's, as extract's
            self._fingerprint = digest[:16] or reference_fingerprint(self.reference.X)
        values = {
            "source": self.source,
            "timestep": record.timestep,
            "time": record.time,
            "novelty": record.novelty,
            "max_dH": record.max_dH,
            "mean_dH": record.mean_dH,
            "halted": self.options.halt,
            "bandwidth": float(self.reference.h),
            "k": self.spec.k,
            "cutoff": self.spec.cutoff,
            "reference": ",".join(self.options.reference_files) or None,
            "reference_environments": len(self.reference),
            "reference_sha256": self._fingerprint,
        }
        # not determined (NaN) or unknown: left out rather than written as a number
        return {
            key: value
            for key, value in values.items()
            if value is not None and not (isinstance(value, float) and not np.isfinite(value))
        }

    def add(self, frame: Atoms, dH: np.ndarray, record: MonitorRecord) -> None:
        """Extract from `frame` (its per-atom `dH`, NaN where not computed: inside the
        domain; the check `record`) and rewrite the file."""
        from atominfo.workflows.labelling import write_structures

        frame = frame.copy()
        dH = np.asarray(dH, dtype=float)
        info = self.provenance(record)
        if np.isnan(dH).any():
            info["dH_nan"] = NOT_COMPUTED
        if self.options.extract_mode == "frame":
            frame.set_array("dH", dH)
            frame.info.update(info)
            pieces = [frame]
        else:
            # `extract` reads a stored dH and refuses NaN: it is given 0 there (no centre
            # either way), and each cut-out gets its atoms' NaN back, by LAMMPS ID
            frame.set_array("dH", np.where(np.isnan(dH), 0.0, dH))
            pieces = self._cut_outs(frame, info)
            for piece in (p for p in pieces if "id" in p.arrays and "dH" in p.arrays):
                rows = np.searchsorted(frame.arrays["id"], piece.arrays["id"])
                piece.arrays["dH"] = dH[rows]
        self.structures.extend(pieces)
        self.frames += 1
        write_structures(self.structures, self.path)

    def _cut_outs(self, frame: Atoms, info: dict) -> list[Atoms]:
        from atominfo.workflows.labelling import ExtractOptions, extract
        from atominfo.workflows.species import AbsentSpeciesWarning
        from atominfo.workflows.species_dh import SpeciesReference

        # --species: scored again by `extract` against each atom's own species (the
        # stored dH has +inf for an absent species, which a stored dH may not hold)
        species = isinstance(self.reference, SpeciesReference)
        options = ExtractOptions(
            mode=self.options.extract_mode,
            dedupe=not species,
            max_picks=self.options.max_picks,
            h=float(self.reference.h),
            dh_array="dH",
        )
        if not (frame.arrays["dH"] > options.min_dh).any():
            return []  # crossed by a threshold on max dH <= 0 only: nothing novel to cut out
        with warnings.catch_warnings():  # the check's record counts the absent atoms
            warnings.simplefilter("ignore", AbsentSpeciesWarning)
            cut = extract(frame, self.reference if species else None, options, spec=self.spec)
        for piece in cut.structures:
            # a frame in memory is frame 0 of '<memory>' to `extract`: the script says more
            for key in ("source_frame", "frame"):
                piece.info.pop(key, None)
            piece.info.update({k: v for k, v in info.items() if k not in _FRAME_WIDE})
        return cut.structures


# Entries of a check that describe the whole frame, not a cut-out (which has its own dH).
_FRAME_WIDE = ("novelty", "max_dH", "mean_dH")
