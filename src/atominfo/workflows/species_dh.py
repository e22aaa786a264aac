"""Per-atom dH of a trajectory, each atom against the reference atoms of its own species
(`atominfo dh --species`, `atominfo extract --species`), streamed frame by frame.

`SpeciesReference` splits the reference by centre species into one
`atominfo.Reference` per species (each prepared for its engine once), so a
frame's atoms of species z are scored against the reference atoms of z only:
``dH(y | X, z) = -log sum_{j: z_j = z} K_h(y, x_j)``, the same number as
`atominfo.workflows.species.species_delta_entropy`. A species the reference
lacks has no term at all: its atoms are novel by construction, their dH is
NaN (null in JSON, empty in CSV: not determined), and an
`AbsentSpeciesWarning` names the species, file and frame where it first
appears. Per-frame and run statistics count those atoms as novel; max and
mean dH are over the atoms whose dH is determined.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from atominfo import params
from atominfo.descriptor import frame_descriptors, validate_parameters
from atominfo.descriptor.bandwidth import DEFAULT_BANDWIDTH
from atominfo.errors import InputError
from atominfo.reference import Reference
from atominfo.settings import DescriptorSpec, Reading
from atominfo.structures.frames import iter_frames
from atominfo.workflows.species import ABSENT, AbsentSpeciesWarning, as_symbols
from atominfo.workflows.species_run import data_species, describe_with_species
from atominfo.workflows.trajectory import FrameDH, frame_time

STATISTICS = ("atoms", "novelty", "max_dH", "mean_dH")


@dataclass(frozen=True)
class SpeciesCalibration:
    """The conformal calibration of each species' reference atoms against the others of
    that species (`atominfo.reference.conformal.NoveltyCalibration` per species)."""

    parts: dict

    def check_rate(self, false_alarm) -> float:
        """`false_alarm`, if every species' calibration resolves it; else InputError
        naming the species."""
        for s, calibration in self.parts.items():
            try:
                false_alarm = calibration.check_rate(false_alarm)
            except InputError as exc:
                raise InputError(f"species {s} of the reference: {exc.reason}") from None
        return float(false_alarm)

    def to_dict(self) -> dict:
        return {s: c.to_dict() for s, c in self.parts.items()}


class SpeciesReference:
    """Reference environments split by centre species: one `Reference` per species.

    Parameters
    ----------
    X : array (n, d), reference descriptors (multicomponent over `species`, or plain).
    symbols : n chemical symbols, the centre species of the rows of X.
    h : one bandwidth, 1/Å.
    species : the run's species list (test and reference together, sorted).
    descriptor : "multicomponent" or "plain".
    k, cutoff : descriptor settings of X.
    sources : the reference files (for messages and the run's guard).
    engine : EngineOptions or None.
    """

    def __init__(
        self,
        X,
        symbols,
        h: float = DEFAULT_BANDWIDTH,
        *,
        species: Sequence[str],
        descriptor: str = "multicomponent",
        k: int,
        cutoff: float,
        sources: Sequence[str] = (),
        engine=None,
    ):
        X = np.asarray(X, dtype=float)
        zx = as_symbols(symbols, len(X), "reference species")
        self.h = params.check("bandwidth", h, label="bandwidth h")
        self.descriptor = params.check("species_descriptor", descriptor, label="descriptor")
        self.species = sorted(set(species) | set(zx.tolist()))
        self.k, self.cutoff, self.sources = k, cutoff, [str(s) for s in sources]
        self.parts = {
            s: Reference(X[zx == s], self.h, k=k, cutoff=cutoff, elements={s}, engine=engine)
            for s in sorted(set(zx.tolist()))
        }
        digest = hashlib.sha256(np.ascontiguousarray(X).tobytes())
        digest.update("\0".join(zx.tolist()).encode())
        self.digest = digest.hexdigest()  # the checkpoint's record of this reference

    @classmethod
    def from_files(
        cls,
        reference,
        test,
        h: float = DEFAULT_BANDWIDTH,
        *,
        spec: DescriptorSpec | None = None,
        reading: Reading | None = None,
        descriptor: str = "multicomponent",
        engine=None,
        progress: Callable[[int], None] | None = None,
        also: Sequence[str] = (),
    ) -> SpeciesReference:
        """From reference structure files; the species list is that of `reference` and
        the frames of `test` selected by `reading` (the reference is read whole; `test`
        may be empty, e.g. a file still to be written: then a test frame holding another
        species is refused by the multicomponent descriptor, naming it, unless `also`
        names it: species the test will hold, e.g. those of a LAMMPS type map)."""
        from atominfo.descriptor import DEFAULT_CUTOFF, DEFAULT_K

        reading = reading or Reading()
        spec = spec or DescriptorSpec()
        whole = Reading(type_map=reading.type_map)
        species = sorted(
            set(data_species(test, reading=reading) if len(test) else ())
            | set(data_species(reference, reading=whole))
            | {str(s) for s in also}
        )
        spec = DescriptorSpec(
            spec.k or DEFAULT_K, spec.cutoff or DEFAULT_CUTOFF, spec.rescale_volume
        )
        X, zx = describe_with_species(
            reference, species, spec=spec, reading=whole, descriptor=descriptor, progress=progress
        )
        files = [reference] if isinstance(reference, str) else list(reference)
        return cls(
            X,
            zx,
            h,
            species=species,
            descriptor=descriptor,
            k=int(spec.k or DEFAULT_K),
            cutoff=float(spec.cutoff or DEFAULT_CUTOFF),
            sources=[str(f) for f in files],
            engine=engine,
        )

    def __len__(self) -> int:
        return sum(len(r) for r in self.parts.values())

    def __repr__(self) -> str:
        counts = ", ".join(f"{s}: {len(r)}" for s, r in self.parts.items())
        return f"SpeciesReference({counts}; h={self.h}, {self.descriptor})"

    def n_reference(self, s: str) -> int:
        """Reference environments of species `s` (0: absent)."""
        return len(self.parts[s]) if s in self.parts else 0

    def delta_entropy(self, Y, symbols) -> np.ndarray:
        """dH of each row of Y against the reference rows of its own species, nats;
        NaN for rows of a species the reference lacks (not determined)."""
        z = as_symbols(symbols, len(Y), "species")
        dH = np.full(len(Y), np.nan)
        for s in sorted(set(z.tolist()) & set(self.parts)):
            mine = z == s
            dH[mine] = self.parts[s].delta_entropy(Y[mine])
        return dH

    def calibration(self, *, progress=None) -> SpeciesCalibration:
        """Each species' conformal calibration (`Reference.calibration`), built once."""
        return SpeciesCalibration(
            {s: r.calibration(progress=progress) for s, r in self.parts.items()}
        )

    def calibration_size(self) -> int:
        """Calibration environments of all species (the calibration's progress total)."""
        from atominfo.reference.conformal import calibration_size

        return sum(calibration_size(len(r), r.seed) for r in self.parts.values())

    def p_values(self, Y, symbols) -> np.ndarray:
        """Conformal p-value of each row of Y against the calibration of its own species;
        NaN for rows of a species the reference lacks (novel by construction)."""
        z = as_symbols(symbols, len(Y), "species")
        p = np.full(len(Y), np.nan)
        for s in sorted(set(z.tolist()) & set(self.parts)):
            mine = z == s
            p[mine] = self.parts[s].p_values(Y[mine])
        return p

    def descriptor_species(self) -> list[str] | None:
        """The species list of the test descriptors (None: the plain descriptor)."""
        return list(self.species) if self.descriptor == "multicomponent" else None

    def signature(self) -> dict:
        """What a resumed run must share: the reference, the mode, the species list."""
        return {"ref": self.digest, "species_mode": self.descriptor, "species": self.species}


@dataclass
class SpeciesFrameDH(FrameDH):
    """`FrameDH` of a species-resolved run: with each atom's symbol and the run's species.

    Its table row counts atoms of an absent species (dH NaN) as novel, takes max
    and mean dH over the determined atoms, and adds per species s the columns
    atoms_s, novelty_s, max_dH_s, mean_dH_s.
    """

    symbols: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=str))
    species: list = field(default_factory=list)
    false_alarm: float | None = None

    def summary(self) -> dict:
        return {
            "frame": self.number,
            "source": self.source,
            "source_frame": self.source_frame,
            "timestep": self.timestep,
            "time": self.time,
            **species_statistics(self.dH, self.symbols, self.species, self.p, self.false_alarm),
        }


def species_statistics(
    dH: np.ndarray, symbols: np.ndarray, species: Sequence[str], p=None, false_alarm=None
) -> dict:
    """A frame's atoms, novelty (atoms of an absent species, dH NaN, count novel), max and
    mean of the determined dH, with a `false_alarm` rate the fraction flagged (p <= rate,
    or absent), then those of each species s of `species` (atoms_s, ...)."""
    p = np.full(len(dH), np.nan) if p is None else np.asarray(p)
    row = _statistics(dH, p, false_alarm)
    for s in species:
        stats = _statistics(dH[symbols == s], p[symbols == s], false_alarm)
        row.update({f"{key}_{s}": value for key, value in stats.items()})
    return row


def species_columns(species: Sequence[str], flagged: bool = False) -> list[str]:
    """The per-species columns of the per-frame table, in order (`flagged`: with a
    false-alarm rate)."""
    keys = STATISTICS + (("flagged",) if flagged else ())
    return [f"{key}_{s}" for s in species for key in keys]


def _statistics(dH: np.ndarray, p: np.ndarray, false_alarm: float | None) -> dict:
    """atoms, novelty (NaN: absent species, counted novel), max and mean of determined dH,
    flagged (with a rate); None where there is nothing to take them over."""
    known = dH[np.isfinite(dH)]
    n = len(dH)
    out = {
        "atoms": n,
        "novelty": float(np.mean(np.isnan(dH) | (np.nan_to_num(dH) > 0))) if n else None,
        "max_dH": float(known.max()) if len(known) else None,
        "mean_dH": float(known.mean()) if len(known) else None,
    }
    if false_alarm is not None:
        hit = np.isnan(dH) | (np.nan_to_num(p, nan=np.inf) <= false_alarm)
        out["flagged"] = float(np.mean(hit)) if n else None
    return out


def iter_species_dh(
    structures,
    reference: SpeciesReference,
    *,
    reading: Reading | None = None,
    spec: DescriptorSpec | None = None,
    skip: int = 0,
    progress: Callable[[int], None] | None = None,
    false_alarm: float | None = None,
) -> Iterator[SpeciesFrameDH]:
    """Yield each frame's per-atom dH against the reference atoms of the same species.

    As `atominfo.workflows.trajectory.iter_trajectory_dh` (frames read one at a
    time; `skip` leading frames passed over), with `reference` a
    `SpeciesReference`; k, cutoff and the descriptor are the reference's. With a
    `false_alarm` rate, each frame also holds the per-atom p-values against its
    species' calibration (`SpeciesReference.p_values`: NaN for an absent species).
    """
    reading = reading or Reading()
    spec = spec or DescriptorSpec()
    k, cutoff = reference.k, reference.cutoff
    validate_parameters(k, cutoff)
    if (spec.k, spec.cutoff) != (None, None) and (spec.k or k, spec.cutoff or cutoff) != (
        k,
        cutoff,
    ):
        raise InputError(
            f"the species reference was described with k = {k}, cutoff = {cutoff} Å: "
            f"the test cannot be described with k = {spec.k}, cutoff = {spec.cutoff} Å"
        )
    skip = params.check("skip", skip)
    species = reference.descriptor_species()
    warned: set[str] = set()
    for number, frame in enumerate(iter_frames(structures, **reading.kwargs())):
        if number < skip:
            continue
        Y = frame_descriptors(frame, k, cutoff, species=species, rescale_volume=spec.rescale_volume)
        symbols = np.asarray(frame.atoms.get_chemical_symbols())
        try:
            dH = reference.delta_entropy(Y, symbols)
            p = None if false_alarm is None else reference.p_values(Y, symbols)
        except InputError as exc:
            raise exc.located(frame.source, frame.index) from None
        note_absent(frame, symbols, dH, warned)
        if progress is not None:
            progress(len(frame.atoms))
        step, time = frame_time(frame.atoms)
        yield SpeciesFrameDH(
            number, frame.source, frame.index, frame.atoms, dH, step, time, p,
            symbols=symbols, species=reference.species, false_alarm=false_alarm,
        )  # fmt: skip


def structure_row(
    reference: SpeciesReference, atoms, where: tuple, warned: set, false_alarm=None
) -> dict:
    """The statistics of one structure (frame `where` = (source, number)) against
    `reference`, each atom against its own species (`species_statistics`), with
    ``absent`` (atoms of a species the reference lacks) and, with a `false_alarm`
    rate, ``min_p`` (None when no atom has a p-value); warns as `note_absent`."""
    dH, symbols, p = score_structure(reference, atoms, where, warned, false_alarm is not None)
    row = species_statistics(dH, symbols, reference.species, p, false_alarm)
    row["absent"] = int(np.isnan(dH).sum())
    if p is not None:
        row["min_p"] = float(np.nanmin(p)) if np.isfinite(p).any() else None
    return row


def score_structure(
    reference: SpeciesReference, atoms, where: tuple, warned: set, p_values: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(dH, symbols, p) of the atoms of one structure (frame `where` = (source, number))
    against `reference`, each against its own species (p: with `p_values`, else None);
    warns of absent species as `note_absent`."""
    from atominfo.structures.frames import Frame

    frame = Frame(atoms, *where)
    species = reference.descriptor_species()
    Y = frame_descriptors(frame, reference.k, reference.cutoff, species=species)
    symbols = np.asarray(atoms.get_chemical_symbols())
    try:
        dH = reference.delta_entropy(Y, symbols)
        p = reference.p_values(Y, symbols) if p_values else None
    except InputError as exc:
        raise exc.located(*where) from None
    note_absent(frame, symbols, dH, warned)
    return dH, symbols, p


def note_absent(frame, symbols: np.ndarray, dH: np.ndarray, warned: set) -> None:
    """One `AbsentSpeciesWarning` per species of `symbols` whose dH is NaN (absent from the
    reference), naming the file and frame where it first appears; `warned` collects them."""
    missing = sorted(set(symbols[np.isnan(dH)].tolist()) - warned)
    if missing:
        warned.update(missing)
        warnings.warn(
            f"{frame.source} frame {frame.index}: species {', '.join(missing)} "
            f"{ABSENT} (dH not determined: null in JSON, empty in CSV)",
            AbsentSpeciesWarning,
            stacklevel=3,
        )


def for_extract(reference, spec: DescriptorSpec, dedupe: bool) -> DescriptorSpec:
    """The descriptor settings `extract` uses with `reference`: with a `SpeciesReference`,
    its descriptor (the multicomponent species list, or the plain one); InputError for
    ``dedupe`` (its greedy picks would compare environments of different centre species)."""
    if not isinstance(reference, SpeciesReference):
        return spec
    if dedupe:
        raise InputError(
            "--species does not take --dedupe (its picks would count an environment of one "
            "species as a duplicate of another's): cap the picks with --max, --max-per-frame"
        )
    species = reference.descriptor_species()
    return DescriptorSpec(
        spec.k or reference.k,
        spec.cutoff or reference.cutoff,
        spec.rescale_volume,
        tuple(species) if species else None,
    )


def species_breakdown(columns: dict, reference: SpeciesReference) -> list[dict]:
    """Per species of the run, from the per-frame table's columns: atoms, novel fraction,
    max and mean dH over the run (None where not determined), reference atoms, status."""
    out = []
    for s in reference.species:
        n = np.nan_to_num(np.asarray(columns.get(f"atoms_{s}", []), dtype=float)).astype(int)
        if not n.sum():
            continue
        seen = n > 0
        nov = np.asarray(columns[f"novelty_{s}"], dtype=float)[seen]
        mx = np.asarray(columns[f"max_dH_{s}"], dtype=float)[seen]
        mean = np.asarray(columns[f"mean_dH_{s}"], dtype=float)[seen]
        determined = reference.n_reference(s) > 0
        row = {
            "species": s,
            "atoms": int(n.sum()),
            "n_reference": reference.n_reference(s),
            "novelty": float(np.rint(nov * n[seen]).sum() / n.sum()),
            "max_dH": float(mx.max()) if determined else None,
            "mean_dH": float((mean * n[seen]).sum() / n.sum()) if determined else None,
            "status": "scored" if determined else ABSENT,
        }
        if f"flagged_{s}" in columns:  # novel at the false-alarm rate (absent: all)
            flagged = np.asarray(columns[f"flagged_{s}"], dtype=float)[seen]
            row["flagged"] = float(np.rint(flagged * n[seen]).sum() / n.sum())
        out.append(row)
    return out


def species_totals(breakdown: list[dict], frames: int) -> dict:
    """Run totals from `species_breakdown`: atoms of absent species count novel; max and
    mean dH over the determined atoms (None when none is)."""
    n = sum(b["atoms"] for b in breakdown)
    scored = [b for b in breakdown if b["max_dH"] is not None]
    m = sum(b["atoms"] for b in scored)
    out = {
        "frames": frames,
        "environments": n,
        "novelty": sum(b["novelty"] * b["atoms"] for b in breakdown) / n if n else None,
        "max_dH": max(b["max_dH"] for b in scored) if scored else None,
        "mean_dH": sum(b["mean_dH"] * b["atoms"] for b in scored) / m if m else None,
    }
    if breakdown and "flagged" in breakdown[0]:
        out["flagged"] = sum(b["flagged"] * b["atoms"] for b in breakdown) / n
    return out
