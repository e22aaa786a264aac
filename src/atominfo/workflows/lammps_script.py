"""LAMMPS input scripts read command by command, as `run_script` runs them.

`read_script` splits a script into commands with LAMMPS's own rules for
lines that continue (``&``, triple quotes) and comments; `script_commands`
also refuses what the monitor cannot run: a ``jump`` (a loop needs LAMMPS
to read the file itself) and a script with nothing to monitor.
"""

from __future__ import annotations

from pathlib import Path

from atominfo.errors import InputError

__all__ = ["drop_data_section", "read_script", "script_commands"]

# Commands that move the atoms, and so call the check: a script without any has
# nothing to monitor.
RUN_COMMANDS = ("run", "minimize", "rerun")
# Commands that may run one without naming it (an action string, Python code).
MAYBE_RUN_COMMANDS = ("if", "python")
MAX_INCLUDE_DEPTH = 16


def read_script(path) -> list[tuple[int, str]]:
    """The commands of a LAMMPS input script, each with the number of its first line.

    Follows the LAMMPS parsing rules that span lines: a line whose last
    printable character is ``&`` continues on the next, and text in triple
    quotes (``\"\"\"``) may hold newlines. Comments (``#`` outside quotes)
    and blank lines are dropped; variables are left for LAMMPS to expand.

    Raises
    ------
    InputError
        When the file cannot be read.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise InputError("file not found", source=str(path)) from None
    except IsADirectoryError:
        raise InputError("is a directory, not a LAMMPS input script", source=str(path)) from None
    except UnicodeDecodeError:
        raise InputError(
            "not a text file (a LAMMPS input script is text)", source=str(path)
        ) from None
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror})", source=str(path)) from None
    lines = text.splitlines()
    commands = []
    i = 0
    while i < len(lines):
        first, command = i, lines[i]
        while i + 1 < len(lines):
            if command.count('"""') % 2 == 1:  # inside triple quotes
                i += 1
                command += "\n" + lines[i]
            elif command.rstrip().endswith("&"):
                i += 1
                command = command.rstrip()[:-1] + " " + lines[i]
            else:
                break
        i += 1
        command = _strip_comment(command.rstrip().removesuffix("&")).strip()
        if command:
            commands.append((first + 1, command))
    return commands


def script_commands(path) -> list[tuple[int, str]]:
    """The commands of an input script that `run_script` can monitor (see `read_script`).

    Raises
    ------
    InputError
        Naming the script: when it cannot be read, holds a ``jump`` (loops
        need LAMMPS to read the file itself), or has nothing to monitor: no
        command that moves the atoms (``run``, ``minimize``, ``rerun``),
        looked for in the files it includes too. A script where that cannot
        be told without running it (an ``if`` or ``python`` command, an
        included file named by a variable) is accepted.
    """
    commands = read_script(path)
    for line, command in commands:
        if command.split()[0] == "jump":
            raise InputError(
                f"line {line}: jump is not supported: the script runs command by "
                "command under the monitor, and LAMMPS can only jump in a file "
                "it reads itself; unroll the loop",
                source=str(path),
            )
    if _moves_atoms(commands, 0) is False:
        raise InputError(
            "script has no run command: nothing to monitor (it needs run, minimize or rerun)",
            source=str(path),
        )
    return commands


def _moves_atoms(commands: list[tuple[int, str]], depth: int) -> bool | None:
    """Whether the commands run, minimize or rerun: True, False, or None (cannot tell)."""
    known = True
    for _, command in commands:
        words = command.split()
        if words[0] in RUN_COMMANDS:
            return True
        if words[0] in MAYBE_RUN_COMMANDS or "$" in words[0]:
            known = False
        elif words[0] == "include":
            name = words[1] if len(words) > 1 else ""
            try:
                if "$" in name or depth >= MAX_INCLUDE_DEPTH:
                    raise InputError("not followed")
                included = _moves_atoms(read_script(name), depth + 1)
            except InputError:  # missing or unreadable: LAMMPS says so when it runs
                included = None
            if included:
                return True
            known = known and included is not None
    return False if known else None


def drop_data_section(path, fix_id: str) -> None:
    """Remove the section of fix `fix_id` (``fix_id # d_name`` and its lines) from a data
    file written by ``write_data``; rewritten atomically, nothing done without one.

    Sections are a header line, a blank line, then their lines up to the next
    header; the section's lines start with an atom ID, never with `fix_id`.
    """
    from atominfo.runs.atomic import atomic_output

    path = Path(path)
    try:
        lines = path.read_text().splitlines(keepends=True)
    except (OSError, UnicodeDecodeError):
        return  # not a text file LAMMPS wrote: nothing of ours to remove
    heads = [i for i, line in enumerate(lines) if line.split("#")[0].strip() == fix_id]
    if not heads:
        return
    start = end = heads[0]
    end += 1
    while end < len(lines) and not lines[end].strip():  # the blank line after the header
        end += 1
    while end < len(lines) and lines[end].strip():  # the section's lines
        end += 1
    while end < len(lines) and not lines[end].strip():  # the blank lines before the next
        end += 1
    if end == len(lines):  # the last section: the blank line before it goes too
        while start > 0 and not lines[start - 1].strip():
            start -= 1
    with atomic_output(path) as tmp:
        tmp.write_text("".join(lines[:start] + lines[end:]))


def _strip_comment(text: str) -> str:
    """`text` up to its first ``#`` outside single, double or triple quotes."""
    quote = None
    j = 0
    while j < len(text):
        if quote is None:
            if text.startswith('"""', j):
                quote, j = '"""', j + 3
                continue
            if text[j] in "\"'":
                quote = text[j]
            elif text[j] == "#":
                return text[:j]
        elif text.startswith(quote, j):
            j += len(quote)
            quote = None
            continue
        j += 1
    return text
