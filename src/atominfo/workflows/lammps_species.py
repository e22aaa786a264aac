"""The species-resolved mode of `LammpsMonitor` (``atominfo lammps --species``).

With a `atominfo.workflows.species_dh.SpeciesReference` each atom of a check is
judged against the reference atoms of its own species: the frame is described
with the reference's descriptor (multicomponent over the reference's species
list, or plain), then `Reference.classify` of that species' part labels every
atom and computes the dH of the novel ones, as for one `Reference`. The
element of an atom is that of its LAMMPS type (``type_map``, else its mass).

An atom of a species the reference lacks is novel by construction. Its dH is
``-log`` of an empty kernel sum: +inf, exactly, and that is what ``d_dH`` and
`LammpsMonitor.last_dH` hold for it (0 still means inside, not computed). A
NaN would poison LAMMPS's per-atom arithmetic, and a finite sentinel would read
as a measured dH; +inf keeps ``compute reduce max`` and ``dump_modify thresh``
honest (it exceeds every threshold). The check's record counts such atoms in
`novelty` and in `absent`; its max and mean dH are over the atoms whose dH is
finite; an absent atom crosses a ``max_dH`` threshold whatever it is (as the ASE
`atominfo.workflows.monitor.NoveltyMonitor`).

With a ``false_alarm`` rate, an atom is novel when its conformal p-value
against the calibration of its own species is at most the rate
(`SpeciesReference.p_values`; an absent species: novel at any rate).

On several MPI ranks each rank describes its own atoms from its own and its
ghost atoms with their species (`atominfo.workflows.lammps_convert.ghost_descriptors`
with the reference's species list): the multicomponent rows, and so the dH, are
the serial run's. ``extract`` cuts out a crossing frame's novel environments as
``atominfo extract --species`` does (`atominfo.workflows.lammps_extract`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from atominfo.errors import InputError
from atominfo.reference.novelty import Novelty
from atominfo.workflows.monitor import MonitorRecord

__all__ = [
    "SpeciesChecks",
    "SpeciesMonitorRecord",
    "classify_species",
    "species_checks",
    "species_record",
]


@dataclass
class SpeciesMonitorRecord(MonitorRecord):
    """A `MonitorRecord` of a species-resolved check, with `species`: {symbol: novel
    fraction of that species' atoms} (absent species: 1.0, novel by construction).
    `as_dict` flattens it to ``novelty_<symbol>`` keys and always holds `absent`."""

    species: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        out = super().as_dict()
        del out["species"]
        out["absent"] = self.absent
        out.update({f"novelty_{s}": value for s, value in self.species.items()})
        return out


def classify_species(reference, Y: np.ndarray, symbols: np.ndarray, dh: str) -> Novelty:
    """The `Novelty` of the rows of Y, each against the part of `reference` (a
    `SpeciesReference`) of its own species (`Reference.classify`, `dh` as there); rows of
    a species the reference lacks: novel, dH +inf (an empty kernel sum)."""
    novel = np.ones(len(Y), dtype=bool)
    dH = np.full(len(Y), np.inf)
    for s in sorted(set(symbols.tolist()) & set(reference.parts)):
        mine = symbols == s
        try:
            found = reference.parts[s].classify(Y[mine], dh=dh)
        except InputError as exc:
            if exc.atom is None:
                raise
            raise InputError(exc.reason, atom=int(np.flatnonzero(mine)[exc.atom])) from None
        novel[mine], dH[mine] = found.novel, found.dH
    return Novelty(novel, dH)


class SpeciesChecks:
    """What `LammpsMonitor` does differently with a `SpeciesReference`: describe and
    judge a frame (`judge`), make its record (`record`), decide a crossing (`crossed`)."""

    def __init__(self, reference, options, k: int, cutoff: float) -> None:
        if (k, cutoff) != (reference.k, reference.cutoff):
            raise InputError(
                f"the species reference was described with k = {reference.k}, cutoff = "
                f"{reference.cutoff} Å: the monitor cannot use k = {k}, cutoff = {cutoff} Å"
            )
        self.reference, self.options = reference, options
        self.symbols = np.zeros(0, dtype=str)  # of the latest check, ordered by LAMMPS ID

    def judge(self, atoms, rows: np.ndarray, where: str) -> tuple[Novelty, np.ndarray | None]:
        """The `Novelty` of the atoms `rows` of `atoms` (local order), each against its
        own species, and with a false-alarm rate their p-values against their species'
        calibration (0 for an absent species: novel at any rate); InputError naming a
        species the descriptor's list lacks."""
        from atominfo.descriptor import frame_descriptors
        from atominfo.structures.frames import Frame

        ref = self.reference
        self.symbols = np.asarray(atoms.get_chemical_symbols())
        species = self._species(self.symbols, where)
        Y = frame_descriptors(Frame(atoms, where, 0), ref.k, ref.cutoff, species=species)[rows]
        return self._judged(Y, self.symbols[rows])

    def ranks(self, lmp, where: str) -> tuple[Novelty, np.ndarray | None]:
        """As `judge`, for this MPI rank's atoms (local order), each described from its
        own and its ghost atoms with their species (`ghost_descriptors`); `symbols` then
        holds every atom's, by ID (collective: every rank calls it at the same point,
        before anything that can fail)."""
        from atominfo.workflows.lammps_convert import ghost_descriptors, symbols_by_id

        self.symbols = symbols_by_id(lmp, self.options.type_map)
        ref, species = self.reference, self._species(self.symbols, where)
        ids, Y = ghost_descriptors(lmp, ref.k, ref.cutoff, self.options.type_map, where, species)
        return self._judged(Y, self.symbols[ids - 1])

    def _species(self, symbols: np.ndarray, where: str) -> list[str] | None:
        """The reference's descriptor species list; InputError naming a species it lacks."""
        species = self.reference.descriptor_species()
        if species is not None:
            extra = sorted(set(symbols.tolist()) - set(species))
            if extra:
                raise InputError(
                    f"species {', '.join(extra)} not in the species list of the reference "
                    f"({', '.join(species)}): give them in the type map before the reference "
                    "is described (--type-map)",
                    source=where,
                )
        return species

    def _judged(self, Y: np.ndarray, symbols: np.ndarray) -> tuple[Novelty, np.ndarray | None]:
        ref = self.reference
        found = classify_species(ref, Y, symbols, "all" if self.options.all_exact else "novel")
        if self.options.false_alarm is None:
            return found, None
        return found, np.nan_to_num(ref.p_values(Y, symbols), nan=0.0)

    def record(self, whole: Novelty, seconds: float, step: int, time, number: int):
        """The `SpeciesMonitorRecord` of a check (`whole`: ordered by LAMMPS ID)."""
        return species_record(whole, self.symbols, seconds, number, step, time)

    def crossed(self, record: MonitorRecord) -> bool:
        """An atom of an absent species crosses a max_dH threshold, whatever it is."""
        return record.absent > 0 and self.options.max_dH is not None


def species_record(
    whole: Novelty, symbols: np.ndarray, seconds: float, number: int, step=None, time=None
) -> SpeciesMonitorRecord:
    """The record of a species-resolved check (`classify_species`; `symbols` in the same
    order): novelty with the absent atoms (dH +inf), max dH over the finite dH, mean dH
    when every dH was computed (else NaN), the absent count, each species' novel fraction."""
    dH = whole.dH
    known = dH[np.isfinite(dH)]
    determined = whole.computed.all() and len(known)
    return SpeciesMonitorRecord(
        number,
        len(dH),
        whole.fraction,
        float(known.max()) if len(known) else math.nan,
        float(known.mean()) if determined else math.nan,
        seconds,
        step,
        time,
        int(np.isposinf(dH).sum()),
        {s: float(whole.novel[symbols == s].mean()) for s in sorted(set(symbols.tolist()))},
    )


def species_checks(reference, options, spec) -> SpeciesChecks | None:
    """The `SpeciesChecks` of a monitor whose reference is a `SpeciesReference`, else None
    (InputError for a k or cutoff other than the reference's)."""
    from atominfo.workflows.species_dh import SpeciesReference

    if not isinstance(reference, SpeciesReference):
        return None
    k = spec.k if spec.k is not None else reference.k
    cutoff = spec.cutoff if spec.cutoff is not None else reference.cutoff
    return SpeciesChecks(reference, options, k, cutoff)
