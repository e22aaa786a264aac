"""The one exception type for bad input, carrying where the problem is."""

from __future__ import annotations


class InputError(ValueError):
    """Bad user input: unreadable file, invalid structure or parameter.

    The message is one line naming the file, frame and atom where they apply,
    so that the command line can print it as it is and exit with status 2.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        frame: int | None = None,
        atom: int | None = None,
    ):
        self.source, self.frame, self.atom = source, frame, atom
        where = []
        if source is not None:
            where.append(str(source))
        if frame is not None:
            where.append(f"frame {frame}")
        if atom is not None:
            where.append(f"atom {atom}")
        self.reason = message
        super().__init__(": ".join(where + [message]))

    def located(self, source=None, frame=None) -> InputError:
        """The same error with a file and frame filled in where it had none."""
        return InputError(
            self.reason,
            source=self.source if self.source is not None else source,
            frame=self.frame if self.frame is not None else frame,
            atom=self.atom,
        )
