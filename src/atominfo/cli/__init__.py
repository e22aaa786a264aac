"""The `atominfo` command line: one entry point, a thin layer over the Python API.

Each command is a module of this package with ``add_arguments(parser)`` and
``run(args)``; its docstring is its description. Only the command being run is
imported (as in ASE's ``ase/cli/main.py``), so ``atominfo --help`` loads no
numerical library. `main` is the only place where errors become exit
statuses: 0 on success, 2 with one line ``atominfo: error: ...`` on any bad
input, bad option, usage error or environmental failure, 130 when
interrupted. Nothing else reaches the terminal: no traceback, ever.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys

from atominfo._version import __version__

PROG = "atominfo"

# command -> module under atominfo.cli, in the order `--help` lists them
COMMANDS = {
    "entropy": "entropy",
    "dh": "dh",
    "overlap": "overlap",
    "descriptors": "descriptors",
    "bandwidth": "bandwidth",
    "curve": "curve",
    "overlap-matrix": "overlap_matrix",
    "compress": "compress",
    "extract": "extract",
    "generations": "generations",
    "calibrate": "calibrate",
    "clusters": "clusters",
    "cnt": "cnt",
    "watch": "watch",
    "lammps": "lammps",
    "demo": "demo",
    "report": "report_page",
    "snapshot": "snapshot",
    "generate": "generate",
    "explore": "explore",
    "dedupe": "dedupe",
    "smooth": "smooth",
    "metrics": "metrics",
    "reference": "reference",
    "inside": "inside",
}

# One line per command for the top-level help, kept here so that listing the
# commands imports none of them.
SUMMARIES = {
    "entropy": "entropy H, diversity D and log n of structure files (nats)",
    "dh": "per-atom differential entropy dH against a reference; dH > 0 is novel",
    "overlap": "fraction of environments inside (dH <= 0) and outside a reference",
    "descriptors": "compute and save the descriptor matrix",
    "bandwidth": "the default bandwidth, its FCC calibration and the volume rule",
    "curve": "learning curve: saturated or still rising (stated test), information gap",
    "overlap-matrix": "overlap of every subset of a dataset against every other",
    "compress": "keep the most informative structures of a dataset",
    "extract": "cut out novel environments (dH > 0) as structures to label",
    "generations": "what each active-learning generation adds",
    "calibrate": "model errors against dH: correlations and conformal intervals",
    "clusters": "nucleation clusters of solid-like atoms per frame",
    "cnt": "classical nucleation theory: critical radius and size",
    "watch": "dH of each new frame of a file still being written",
    "lammps": "run a LAMMPS script, checking dH every N steps; halt when novel",
    "demo": "built-in demonstration on Cu (EMT): H, D and dH",
    "report": "one self-contained HTML page: information, completeness, redundancy, novelty",
    "snapshot": "novelty of every atom of one huge snapshot, by spatial chunks, resumable",
    "generate": "Monte Carlo candidates with environments new to a dataset (dH target)",
    "explore": "biased MD toward environments new to a dataset; snapshots, resumable",
    "dedupe": "remove duplicate structures or environments within a tolerance",
    "smooth": "kernel-weighted average of per-environment values (e.g. errors)",
    "metrics": "n, H, D, log n and efficiency H/log n per group and total",
    "reference": "compact reference of a dataset per species (size and error stated)",
    "inside": "is my system inside this dataset? dH against a compact reference",
}

DESCRIPTION = (
    "Information content of atomistic data (the QUESTS method): entropy, "
    "diversity, dH, overlap. Lengths in Å, descriptors and bandwidths in 1/Å, "
    "entropies in nats."
)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Option help with its default, where it has a meaningful one."""

    def _get_help_string(self, action):
        if action.default in (None, False, argparse.SUPPRESS) or "%(default)" in (
            action.help or ""
        ):
            return action.help
        return super()._get_help_string(action)


class UsageError(Exception):
    """A bad command line (unknown option, missing argument, bad value)."""


# A value, never an option, though it starts with '-': a negative number
# ('-1', '-.5', '-1e-3'), a negative frame index or slice ('-3:'), or minus
# infinity or NaN in any case. No option of ours starts with a digit, '.', 'inf' or 'nan'.
_NEGATIVE_VALUE = re.compile(r"-(\.?\d|inf(inity)?$|nan$)", re.IGNORECASE)


class Parser(argparse.ArgumentParser):
    """argparse, with usage errors raised instead of printed and exited on, and
    negative values taken as values (``--min-dh -inf``, ``--index -3:``)."""

    def _parse_optional(self, arg_string):
        # argparse takes '-inf' or '-1e-3' for an unknown option (its own pattern
        # of a negative number is '-1' or '-1.5' only) and '-inf' for '-i nf'
        if _NEGATIVE_VALUE.match(arg_string) and arg_string not in self._option_string_actions:
            return None
        return super()._parse_optional(arg_string)

    def error(self, message):  # noqa: D102 - argparse's hook
        raise UsageError(
            f"{self.prog.split(' ', 1)[-1]}: {message}" if " " in self.prog else message
        )


def _top_parser() -> Parser:
    parser = Parser(
        prog=PROG,
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="commands:\n"
        + "\n".join(f"  {name:<16}{SUMMARIES[name]}" for name in COMMANDS)
        + f"\n\nRun '{PROG} COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument(
        "command", choices=list(COMMANDS), metavar="COMMAND", help="one of the commands below"
    )
    return parser


def command_parser(name: str):
    """The parser of one command, and its module (imported here, on demand)."""
    module = importlib.import_module(f"atominfo.cli.{COMMANDS[name]}")
    # the docstring's first paragraph, joined: its first line may stop mid-sentence
    description = " ".join((module.__doc__ or name).strip().split("\n\n")[0].split())
    parser = Parser(prog=f"{PROG} {name}", description=description, formatter_class=HelpFormatter)
    module.add_arguments(parser)
    return parser, module


def _run(argv: list[str]) -> int:
    if not argv:
        raise UsageError(f"no command given; run '{PROG} --help' for the list")
    if argv[0] not in COMMANDS:
        if argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version"):
            raise UsageError(
                f"unknown option {argv[0]}: options go after the command; run '{PROG} --help'"
            )
        _top_parser().parse_args(argv[:1])  # --help, --version or an unknown command
        return 0
    parser, module = command_parser(argv[0])
    args = parser.parse_args(argv[1:])
    from atominfo.cli.options import AT_END

    try:
        code = module.run(args)
    finally:
        while AT_END:
            AT_END.pop()()
    return 0 if code is None else int(code)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 success, 2 error, 130 interrupted)."""
    from atominfo.cli.report import PENDING, error_line, flush_warnings, install_warning_format

    argv = list(sys.argv[1:] if argv is None else argv)
    install_warning_format()
    try:
        code = _run(argv)
        flush_warnings()
        return code
    except SystemExit as exc:  # --help and --version exit through argparse
        return 0 if exc.code in (0, None) else 2
    except KeyboardInterrupt:
        from atominfo.cli.report import interrupted_message
        from atominfo.runs.signals import interruption_reached

        interruption_reached()
        flush_warnings()
        can_resume = (
            bool(argv)
            and argv[0] in COMMANDS
            and ("--resume" in command_parser(argv[0])[0]._option_string_actions)
        )
        print(interrupted_message(argv, can_resume), file=sys.stderr)
        return 130
    except BrokenPipeError:  # `atominfo ... | head`: the reader is gone, nothing to say
        _silence_stdout()
        return 0
    except BaseException as exc:  # every other failure: one line, exit 2
        if os.environ.get("ATOMINFO_DEBUG"):
            raise
        PENDING.clear()
        print(error_line(exc, UsageError), file=sys.stderr)
        return 2


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that Python's exit flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def console_main() -> None:
    """The `atominfo` console script."""
    code, returned = 130, False
    try:  # the imports too: Ctrl-C there is an interruption, not a traceback
        # SIGTERM (a batch system's time limit, `kill`) ends the run like Ctrl-C
        from atominfo.runs.signals import raise_on_signals

        raise_on_signals()
        code, returned = main(), True
        _ignore_signals()
    except KeyboardInterrupt:  # before main took over, or as it returned (the command had ended)
        _ignore_signals()
        if not returned:
            print(f"{PROG}: interrupted", file=sys.stderr)
    sys.exit(code)


def _ignore_signals() -> None:
    """The command has ended: a signal during the interpreter's teardown (joining
    threads, freeing LAMMPS) would print a traceback or kill the process by signal.
    (The standard library only: this also runs when Ctrl-C came during the imports.)"""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if hasattr(signal, "setitimer"):  # no retried interruption (runs/signals.py) either
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_IGN)
