"""The job scripts' runtime settings (ferrostem.runtime)."""

import platform
import subprocess
import sys

import pytest


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt(3) thresholds are glibc's")
def test_block_temporaries_stay_in_the_heap_on_glibc():
    # In child processes (the thresholds are process-wide): a gene block's worth of 16 MB temporaries (96 MB),
    # freed and allocated again ten times. With glibc's dynamic thresholds the freed top of the heap goes back to
    # the kernel and every block faults its pages in again (about 30,000 faults); kept in the heap, none.
    code = """
import resource, sys
import numpy as np
from ferrostem.runtime import keep_block_temporaries_in_heap
if sys.argv[1] == "tuned":
    assert keep_block_temporaries_in_heap()
def block():
    temporaries = [np.ones(2_000_000) for _ in range(6)]
    del temporaries
for _ in range(3):
    block()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    block()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""

    def faults(mode: str) -> int:
        run = subprocess.run([sys.executable, "-c", code, mode], check=True, capture_output=True, text=True)
        return int(run.stdout)

    assert faults("default") > 20_000  # the behaviour the setting is for (about 29,700 here)
    assert faults("tuned") < 1_000
