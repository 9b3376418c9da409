"""User-facing errors: one line, naming the file, line and field or key, exit code 2."""

from __future__ import annotations

from pathlib import Path


class LifelongError(Exception):
    """An error caused by the user's input; the CLI prints it as one line and exits with 2."""

    exit_code = 2


class InputError(LifelongError):
    """Bad content in a file the user gave: names the file, and the line and field when known."""

    def __init__(self, path: str | Path, message: str, line: int | None = None, field: str | None = None):
        self.path = str(path)
        self.line = line
        self.field = field
        self.message = message
        where = self.path if line is None else f"{self.path}:{line}"
        if field:
            where += f": field '{field}'"
        super().__init__(f"{where}: {message}")

    def __reduce__(self):  # picklable (a Ray task's error comes back to the driver pickled)
        return type(self), (self.path, self.message, self.line, self.field)


class ConfigError(LifelongError):
    """A config key that is unknown, of the wrong type or out of range."""


class ModelError(LifelongError):
    """A model that cannot be found or loaded."""


class DiskFullError(LifelongError):
    """The disk filled up while a run was writing; what was written before is intact."""
