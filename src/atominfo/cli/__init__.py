"""The `atominfo` command line: a thin layer over the Python API.

Each subcommand lives in a module of this package; this file assembles them
and turns bad input into a one-line error with exit status 2.
"""

from __future__ import annotations

import sys

import typer

from atominfo.errors import InputError
from atominfo.cli import clusters, core, dataset, monitor, trajectory, uncertainty

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Information content of atomistic data (QUESTS): entropy, diversity, "
                  "dH, overlap. Lengths in Å, descriptors and bandwidths in 1/Å, entropies "
                  "in nats.")
app.command("descriptors")(core.cmd_descriptors)
app.command("entropy")(core.cmd_entropy)
app.command("dh")(trajectory.cmd_dh)
app.command("overlap")(core.cmd_overlap)
app.command("calibrate")(uncertainty.cmd_calibrate)
app.command("clusters")(clusters.cmd_clusters)
app.command("cnt")(clusters.cmd_cnt)
app.command("watch")(monitor.cmd_watch)
app.command("bandwidth")(core.cmd_bandwidth)
app.command("curve")(dataset.cmd_curve)
app.command("overlap-matrix")(dataset.cmd_overlap_matrix)
app.command("compress")(dataset.cmd_compress)
app.command("generations")(dataset.cmd_generations)


@app.command("demo")
def cmd_demo(frames: int = typer.Option(10, help="MD frames per set."),
             repeat: int = typer.Option(3, help="Supercell repeat (4 * repeat^3 atoms)."),
             json: bool = typer.Option(False, "--json", help="Print JSON only.")):
    """Built-in demo: Cu crystal at 300 K and 1000 K and a melt (EMT), H, D and dH."""
    from atominfo.workflows.demo import run
    from atominfo.cli.common import print_json

    result = run(repeat=repeat, n_frames=frames, log=(lambda *a: None) if json else print)
    if json:
        print_json(result)


def main(argv=None) -> int:
    """Entry point: run the app; InputError -> one line on stderr, exit 2."""
    try:
        code = app(args=argv, standalone_mode=False)
        if isinstance(code, int):  # typer.Exit(code) comes back as a return value here
            return code
    except InputError as exc:
        print(f"atominfo: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("atominfo: interrupted", file=sys.stderr)
        return 130
    except typer.Exit as exc:
        return exc.exit_code
    except Exception as exc:  # click usage errors and the like
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            return exc.exit_code
        if isinstance(exc, click.exceptions.Abort):
            return 130
        raise
    return 0


def console_main() -> None:
    sys.exit(main())
