"""What every rule script does first; import it before anything else: `from _bootstrap import log`.

Snakemake runs a rule's script as `__main__` with the `snakemake` object in its globals and the script's folder on
`sys.path`, so this module can find the rule's log file: stderr goes there (tracebacks, warnings and the library's
logging included), and the repository's `src/` is put first on the path so that the scripts use this checkout's
library even where it is not installed (`--sdm conda`, envs/ferrostem.yaml). The garbage collector is off until the
script calls `ferrostem.runtime.imports_done()` after its last import (runtime.pause_collection_for_imports).
"""

import __main__
import sys
from pathlib import Path

sys.stderr = open(__main__.snakemake.log[0], "w")  # stays open for the life of the job
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from ferrostem.runtime import pause_collection_for_imports, script_logging  # noqa: E402 (needs src/ on the path)

pause_collection_for_imports()
log = script_logging()
