"""What every Snakemake script does first: log to the rule's log file (stderr is redirected there)."""

from __future__ import annotations

import logging
import sys
import warnings


def script_logging(level: int = logging.INFO) -> logging.Logger:
    logging.basicConfig(
        stream=sys.stderr, level=level, force=True, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.captureWarnings(True)
    warnings.simplefilter("default")
    return logging.getLogger("ferrostem")
