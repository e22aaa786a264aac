"""Generate candidate structures whose environments are new to a dataset (Monte Carlo).

From seed structures, simulated annealing over single-atom displacements and
(for fully periodic cells) small cell strains drives each structure towards
environments the dataset does not cover:

* objective ``"target"`` (default): bring the largest per-atom dH of the
  structure (nats, against the reference) into ``[target_low, target_high]``.
  The energy minimised is the distance of ``max dH`` from that range (zero
  inside it); a candidate is accepted as soon as it lies in the range, so it
  is new (dH > 0 where ``target_low > 0``) without being absurdly far from
  the data;
* objective ``"entropy"``: maximise the entropy gain ``H(R + s) - H(R)`` of
  the reference R when the structure s is added (energy
  ``-(n_R + n_s) * gain``, i.e. the gain in total nats); the best state of the
  run is kept when its gain is positive and some atom has dH > 0.

Physical constraints hold for every accepted state (a move violating one is
rejected before its dH is computed, and the seed must satisfy them): a minimum
interatomic distance (periodic images included), a density range (g/cm³,
periodic cells), and a fixed composition (moves never change species).

Diversity: candidates are made one after the other, each against the
reference *plus every candidate accepted before it*, so two candidates never
fill the same gap. ``generations`` repeats this; generation g is judged
against the dataset and all earlier generations.

Speed: a displacement changes the descriptors only of atoms within the cutoff
of the moved atom's old or new position (periodic images included, see
docs/method.md, section 1.1); only those rows are recomputed (with the
library's own descriptor kernel, bit for bit the full result) and only their
kernel sums re-evaluated against the reference, with the exact log-sum fold
of `atominfo.engine.fold`.

This module is the entry point (`generate`, which also writes the campaign's
files, all or none); the parts live beside it: `generate_options` (the
knobs), `generate_constraints`, `generate_objective` (sums and energy),
`generate_moves`, `generate_anneal` (one walk) and `generate_campaign` (the
loop, `Campaign`, the writers).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
from ase import Atoms

from atominfo import params
from atominfo.descriptor.defaults import DEFAULT_CUTOFF, DEFAULT_K
from atominfo.descriptor.kernel import min_distance, structure_descriptors
from atominfo.errors import InputError
from atominfo.information import DEFAULT_BANDWIDTH, as_descriptor_matrix, check_widths
from atominfo.settings import DescriptorSpec, Reading
from atominfo.workflows.generate_campaign import (
    Campaign,
    CampaignLoop,
    write_candidates,
    write_summary,
)
from atominfo.workflows.generate_constraints import (
    Constraints,
    constraints_for,
    mass_density,
    min_distance_value,
)
from atominfo.workflows.generate_moves import local_descriptors
from atominfo.workflows.generate_options import (
    DEFAULT_TARGET,
    DEFAULT_TEMPERATURE,
    CampaignFiles,
    GenerateOptions,
    below_cutoff,
)

__all__ = [
    "DEFAULT_TARGET",
    "DEFAULT_TEMPERATURE",
    "Campaign",
    "CampaignFiles",
    "Constraints",
    "GenerateOptions",
    "constraints_for",
    "generate",
    "local_descriptors",
    "mass_density",
    "min_distance",
    "min_distance_value",
    "write_candidates",
    "write_summary",
]

# keyword arguments `generate` folds into its value objects (the former signature)
_OPTION_KEYWORDS = frozenset(f.name for f in fields(GenerateOptions))
_SPEC_KEYWORDS = frozenset({"k", "cutoff"})
_READING_KEYWORDS = frozenset({"index", "format", "type_map"})
_FILES_KEYWORDS = frozenset({"output", "summary"})


def generate(
    seeds,
    reference,
    n_candidates: int = 10,
    *,
    h: float = DEFAULT_BANDWIDTH,
    options: GenerateOptions | None = None,
    spec: DescriptorSpec | None = None,
    reading: Reading | None = None,
    files: CampaignFiles | None = None,
    progress: Callable[[int], None] | None = None,
    **keywords,
) -> Campaign:
    """Make candidate structures whose environments are new to `reference`.

    Parameters
    ----------
    seeds : structure file path(s), ase.Atoms or list of Atoms: starting
        structures, used in turn (candidate i starts from seed i mod n_seeds).
    reference : a `Reference` (one bandwidth), a descriptor array (n, 2k-1)
        in 1/Å, structure file path(s), or Atoms: the dataset.
    n_candidates : int, candidates per generation.
    h : float, bandwidth, 1/Å (ignored for a `Reference`, which has its own).
    options : `GenerateOptions`, the Monte Carlo knobs (generations, steps,
        objective, target, temperature, moves, constraints, seed).
    spec : `DescriptorSpec` (k and cutoff only; default: a `Reference`'s own,
        else 32 and 5 Å); must match the reference.
    reading : `Reading`, frame selection, format and type map of seed files.
    files : `CampaignFiles`, to write the candidates (and a summary) inside
        an `atominfo.runs.guard.OutputGuard`: all or none, never over an
        input. A campaign that makes no candidate is then an error.
    progress : callable or None, called with the Monte Carlo steps of each walk.
    **keywords : the fields of `GenerateOptions` (``steps=``, ``target=``,
        ``seed=``, ...), ``k=``/``cutoff=`` (`DescriptorSpec`),
        ``index=``/``format=``/``type_map=`` (`Reading`) and
        ``output=``/``summary=`` (`CampaignFiles`), each folded into its
        object (over `options`, `spec`, `reading`, `files` where given)::

            generate("seeds.extxyz", "train.extxyz", 5, steps=500, seed=1,
                     output="candidates.extxyz", summary="campaign.json")

    Returns
    -------
    Campaign. Fewer candidates than asked for (a warning says so) where a
    run does not reach its objective within the steps.

    Raises
    ------
    InputError
        Bad input or settings, a seed violating the constraints, a refused
        output, or (with `files`) no candidate made.
    """
    n_candidates = params.check("n_candidates", n_candidates)
    options, spec, reading, files = _fold(keywords, options, spec, reading, files)
    k, cutoff = _descriptor_settings(spec, reference)
    below_cutoff(options.min_distance, cutoff)
    run = _Run(seeds, reference, h, options, k, cutoff, reading)
    if files is None:
        return run.campaign(n_candidates, progress)
    return run.write(files, n_candidates, progress)


def _fold(keywords: dict, options, spec, reading, files):
    """The value objects of `generate`, with its keyword arguments folded in."""
    unknown = set(keywords) - _OPTION_KEYWORDS - _SPEC_KEYWORDS - _READING_KEYWORDS
    unknown -= _FILES_KEYWORDS
    if unknown:
        raise TypeError(f"generate() got an unexpected keyword argument {sorted(unknown)[0]!r}")

    def given(names: frozenset) -> dict:
        return {name: value for name, value in keywords.items() if name in names}

    options = _folded(GenerateOptions, options, given(_OPTION_KEYWORDS))
    spec = _folded(DescriptorSpec, spec, given(_SPEC_KEYWORDS))
    reading = _folded(Reading, reading, given(_READING_KEYWORDS))
    file_keywords = given(_FILES_KEYWORDS)
    if files is None and file_keywords and "output" not in file_keywords:
        raise InputError("a summary needs an output: give output= (the candidates file) too")
    files = (
        _folded(CampaignFiles, files, file_keywords) if files is not None or file_keywords else None
    )
    return options, spec, reading, files


def _folded(kind, given, values: dict):
    if given is None:
        return kind(**values)
    return replace(given, **values) if values else given


def _descriptor_settings(spec: DescriptorSpec, reference) -> tuple[int, float]:
    """(k, cutoff): the spec's, else a `Reference`'s own, else the defaults."""
    from atominfo.reference import Reference

    if spec.rescale_volume is not None or spec.species is not None:
        raise InputError(
            "generate describes structures as they are: a descriptor spec with "
            "rescale_volume or species is not supported"
        )
    own = (reference.k, reference.cutoff) if isinstance(reference, Reference) else (None, None)
    k = next(v for v in (spec.k, own[0], DEFAULT_K) if v is not None)
    cutoff = next(v for v in (spec.cutoff, own[1], DEFAULT_CUTOFF) if v is not None)
    return k, cutoff


class _Run:
    """One campaign: seeds and reference read, constraints made, the loop run."""

    def __init__(self, seeds, reference, h, options: GenerateOptions, k, cutoff, reading):
        self.seeds, self.reference, self.h = seeds, reference, h
        self.options, self.k, self.cutoff, self.reading = options, k, cutoff, reading

    def write(self, files: CampaignFiles, n_candidates: int, progress) -> Campaign:
        """The campaign, its candidates and summary written inside an `OutputGuard`."""
        from atominfo.runs.guard import OutputGuard

        inputs = [
            *(_file_names(self.seeds) or ()),
            *(_file_names(self.reference) or ()),
            *files.reference_files,
        ]
        with OutputGuard(inputs=inputs, outputs=files.outputs()):
            campaign = self.campaign(n_candidates, progress, files.reference_files)
            if not campaign.candidates:
                raise InputError(self._none_made())
            campaign.output, campaign.summary = files.output, files.summary
            write_candidates(campaign, files.output)
            if files.summary is not None:
                write_summary(campaign, files.summary)
        return campaign

    def _none_made(self) -> str:
        o = self.options
        goal = (
            f"largest dH in [{o.target[0]:g}, {o.target[1]:g}] nats"
            if o.objective == "target"
            else "a positive entropy gain"
        )
        # (the command line's own words: this is its error too)
        return (
            f"no candidate reached the objective ({goal} at --bandwidth {self.h:g} 1/Å) "
            f"within {o.steps} steps: raise --steps, widen the target range, or check "
            "that the seeds can approach it"
        )

    def campaign(self, n_candidates: int, progress, reference_files=()) -> Campaign:
        """Read, check, and run every generation (the reference's `h` is kept)."""
        import time

        from threadpoolctl import threadpool_limits

        frames = _read_seeds(self.seeds, self.reading)
        X_ref, h = _reference_matrix(self.reference, self.h, self.k, self.cutoff)
        self.h = h = params.check("bandwidth", h)
        if X_ref.shape[1] != 2 * self.k - 1:
            check_widths(np.zeros((1, 2 * self.k - 1)), X_ref)
        cons = [self._constraints(*frame) for frame in frames]
        start = time.perf_counter()
        loop = CampaignLoop(frames, cons, X_ref, h, self.k, self.cutoff, self.options)
        # small matrix products, one after the other: a multi-threaded BLAS only spins
        with threadpool_limits(1, user_api="blas"):
            loop.run(n_candidates, progress)
        clock, o = loop.clock, self.options
        return Campaign(
            loop.candidates,
            loop.rows,
            n_candidates,
            int(clock.steps),
            time.perf_counter() - start,
            clock.seconds / clock.steps if clock.steps else float("nan"),
            o.objective,
            o.target,
            o.temperature,
            o.seed,
            seeds=_file_names(self.seeds),
            reference=_file_names(self.reference) or (list(reference_files) or None),
            reference_environments=len(X_ref),
        )

    def _constraints(self, atoms: Atoms, source: str, frame: int) -> Constraints:
        """A seed's constraints; refuses a seed that violates them (or has coincident atoms)."""
        structure_descriptors(atoms, self.k, self.cutoff, source=source, frame=frame)
        o = self.options
        c = constraints_for(atoms, self.cutoff, o.min_distance, o.density)
        bad = c.violations(atoms, self.cutoff)
        if bad:
            raise InputError(f"seed violates the constraints: {bad[0]}", source=source, frame=frame)
        return c


def _file_names(value) -> list[str] | None:
    """`value` as a list of file names when it names files (a path or paths), else None."""
    if isinstance(value, (str, Path)):
        return [str(value)]
    if (
        isinstance(value, (list, tuple))
        and value
        and all(isinstance(v, (str, Path)) for v in value)
    ):
        return [str(v) for v in value]
    return None


def _read_seeds(seeds, reading: Reading) -> list[tuple[Atoms, str, int]]:
    from atominfo.structures.frames import iter_frames

    if isinstance(seeds, Atoms):
        seeds = [seeds]
    out = [(f.atoms, f.source, f.index) for f in iter_frames(seeds, **reading.kwargs())]
    if not out:
        raise InputError("no seed structures")
    return out


def _reference_matrix(reference, h, k, cutoff):
    """(X, h) of the reference: a Reference, a descriptor array, or structure files."""
    from atominfo.reference import Reference

    if isinstance(reference, Reference):
        if not np.isscalar(reference.h):
            raise InputError("generate needs a reference with one bandwidth")
        return reference.X, float(reference.h)
    if isinstance(reference, (str, Path)) or (
        isinstance(reference, (list, tuple)) and reference and isinstance(reference[0], (str, Path))
    ):
        ref = Reference.from_files(reference, h, k=k, cutoff=cutoff)
        return ref.X, float(h)
    if isinstance(reference, (Atoms, list, tuple)):
        ref = Reference.from_structures(reference, h, k, cutoff)
        return ref.X, float(h)
    return as_descriptor_matrix(reference, "reference"), float(h)
