"""How a run reads, writes and resumes: the infrastructure under every command.

* `guard.OutputGuard`: opened over a run's inputs and outputs before any
  work. It refuses outputs that would destroy an input, locks them against a
  second run, and commits them **all or none**: files written through
  `atomic.atomic_output` while it is open are staged under hidden names and
  renamed into place together when the run succeeds; a failure or an
  interruption leaves every output as it was before the run.
* `checkpoint.Checkpoint`: the one resume record of a resumable run (``dh``,
  ``snapshot``). It holds the run's signature (options and the SHA-256 of its
  inputs) and the state to continue from. A ``--resume`` that does not match
  is refused with the differences, and nothing is deleted; the work of an
  interrupted run is discarded only on request (``--restart``).

Nothing here knows about descriptors or entropies; presentation (plots,
HTML, chemiscope) lives in `atominfo.outputs`.
"""
