"""Exceptions that carry the file, sample or gene at fault, so users see what to fix."""


class FerrostemError(Exception):
    """Base class: every message names what is wrong and where."""


class InputFormatError(FerrostemError):
    """A file does not have the layout its source promises."""


class CohortError(FerrostemError):
    """Samples, clinical records or genes do not fit together."""


class ConfigError(FerrostemError):
    """The configuration asks for something that cannot be done."""


class ScaleError(CohortError):
    """Expression values are not on the scale a method needs (log values given to DESeq2, TPM to a log2 method)."""
