"""What every rule script does first; import it before anything else: `from _bootstrap import log`.

Snakemake runs a rule's script as `__main__` with the `snakemake` object in its globals and the script's folder on
`sys.path`, so this module can find the rule's log file: stderr goes there (tracebacks, warnings and the library's
logging included), and the repository's `src/` is put first on the path so that the scripts use this checkout's
library even where it is not installed (`--sdm conda`, envs/ferrostem.yaml).
"""

import __main__
import sys
from pathlib import Path

sys.stderr = open(__main__.snakemake.log[0], "w")  # stays open for the life of the job
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from ferrostem.runtime import script_logging  # noqa: E402 (needs src/ on the path)

log = script_logging()
