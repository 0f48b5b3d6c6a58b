"""The one error a user's mapping or files can cause at the front door."""

from __future__ import annotations


class IngestConfigError(ValueError):
    """The mapping or the file it points at is unusable; the message says how to fix it.

    Its text is what the person sees, whole, in one or two lines: the file, the field or
    column, the problem and, where there is one, an example value."""


class SourceFileError(IngestConfigError):
    """A file the mapping points at is missing or cannot be read as its shape says."""
