"""The boxes of a huge snapshot on a Dask cluster: positions out, per-atom results back.

The client streams the file, sorts the atoms into boxes and writes the outputs,
as in a local run (`atominfo.workflows.snapshot`). What changes is where each
box is analysed: the `BoxAnalyser` (the reference with its two indexes, about
2.2 times the reference's descriptors) is sent once to every worker, and each
task carries the positions of one box and its halo (24 bytes an atom, plus
8 for its atom number) and returns its dH and labels (9 bytes an atom). The
workers compute the descriptors, the labels and dH; no descriptor crosses the
network.

Results are written in box order, and a box's result depends only on its
positions and the analyser, so the outputs are the same bytes as the local
run's. A task whose worker dies is rerun on another (Dask retries); if every
worker holding the analyser dies, it is sent again and the pending boxes
resubmitted (`atominfo.engine.dask.iter_in_order`). At most `window` boxes are
in flight, so the client's memory stays bounded.
"""

from __future__ import annotations

from atominfo.engine.dask import Broadcast, iter_in_order, with_worker_threads
from atominfo.workflows.snapshot_box import run_box

# Boxes in flight per worker thread: enough to keep every worker busy while
# the client gathers the next halo and writes the last result.
BOXES_PER_THREAD = 2


def analyse_box(analyser, coords, n_core, owner, source, frame):
    """One task: (dH, novel, timings) of a box, on a worker, with all its threads."""
    timings: dict = {}
    dh, novel = with_worker_threads(
        run_box, analyser, coords, n_core, owner, source, frame, timings
    )
    return dh, novel, timings


def map_boxes(analyser, jobs, client, window: int | None = None):
    """(job, dH, novel, timings) of each `BoxJob`, analysed on the workers, in job order."""
    from atominfo.engine.dask import client_of

    client = client_of(client)
    shared = Broadcast(analyser, client)
    threads = max(1, sum(client.nthreads().values()))

    def submit(job):
        # positions and atom numbers only: the records stay here, for the outputs
        return client.submit(
            analyse_box,
            shared.future,
            job.coords,
            len(job.core),
            job.owner,
            job.source,
            job.frame,
            pure=False,
            retries=3,
        )

    for job, (dh, novel, timings) in iter_in_order(
        jobs, submit, shared, window or BOXES_PER_THREAD * threads
    ):
        yield job, dh, novel, timings
