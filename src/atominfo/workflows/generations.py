"""Active-learning generations: what each new batch adds (docs/method.md, section 4.3).

For generation g, its size, the novelty of its environments against all
environments of generations before g (fraction with dH > 0), and the
entropy H and diversity D of the cumulative set of generations 1..g.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from atominfo.errors import InputError
from atominfo.information import (
    DEFAULT_BANDWIDTH,
    as_descriptor_matrix,
    check_widths,
    delta_entropy,
    entropy_and_diversity,
)
from atominfo.results import Result


@dataclass
class Generation(Result):
    """One generation's figures (nats for H, D and dH; novelty is a fraction)."""

    label: str
    structures: int | None
    environments: int
    novelty: float | None  # None for the first generation (nothing before it)
    mean_dH: float | None
    cumulative_environments: int
    cumulative_entropy: float
    cumulative_diversity: float


def generation_report(
    generations: Mapping[str, np.ndarray],
    h: float = DEFAULT_BANDWIDTH,
    *,
    structures: Mapping[str, int] | None = None,
    progress: Callable[[int], None] | None = None,
    **engine,
) -> list[Generation]:
    """Novelty of each generation against the earlier ones, and H, D of the cumulative set.

    Parameters
    ----------
    generations : {label: array (n_g, d) of descriptors}, in generation order.
    h : bandwidth, 1/Å (one value).
    structures : {label: number of structures}, optional, only reported.
    progress : called with 1 after each generation.
    engine : options for the kernel engine.
    """
    if np.ndim(h) != 0:
        raise InputError("the generation report takes one bandwidth")
    if len(generations) == 0:
        raise InputError("no generations given")
    labels = [str(k) for k in generations]
    blocks = [as_descriptor_matrix(generations[k], f"generation {k!r}") for k in generations]
    for block in blocks:
        check_widths(block, blocks[0])
    rows = []
    for g, (label, block) in enumerate(zip(labels, blocks)):
        novelty = mean_dH = None
        if g > 0:
            earlier = np.concatenate(blocks[:g])
            dH = delta_entropy(block, earlier, h, **engine)
            novelty, mean_dH = float((dH > 0).mean()), float(dH.mean())
        cumulative = np.concatenate(blocks[: g + 1])
        H, D = entropy_and_diversity(cumulative, h, **engine)
        rows.append(
            Generation(
                label,
                None if structures is None else int(structures[label]),
                len(block),
                novelty,
                mean_dH,
                len(cumulative),
                float(H),
                float(D),
            )
        )
        if progress is not None:
            progress(1)
    return rows
