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


def test_collection_paused_for_imports_then_back_on_without_the_imports():
    # In a child process (the collector's state is process-wide). While paused, a cycle made during the imports
    # stays; after imports_done, the imported objects are out of the collector's reach (the permanent
    # generation) and a cycle made afterwards is collected as usual.
    code = """
import gc
from ferrostem.runtime import imports_done, pause_collection_for_imports
pause_collection_for_imports()
assert not gc.isenabled()
import json, decimal  # the script's imports
imports_done()
assert gc.isenabled()
frozen = gc.get_freeze_count()
assert frozen > 1000, frozen
class Node:
    pass
a, b = Node(), Node()
a.other, b.other = b, a
del a, b
print(gc.collect())
"""
    run = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert int(run.stdout) >= 2  # the two nodes (and their __dict__s)


def test_every_job_script_resumes_collection_right_after_its_imports():
    # _bootstrap pauses the collector; a script that never called imports_done would run with it off and keep
    # every cyclic structure it drops (figures, data frames) until it ends.
    import ast
    from pathlib import Path

    scripts = sorted((Path(__file__).resolve().parents[1] / "workflow" / "scripts").glob("*.py"))
    checked = 0
    for script in scripts:
        if script.name == "_bootstrap.py":
            continue
        body = ast.parse(script.read_text()).body
        first = body[0]
        assert isinstance(first, (ast.Import, ast.ImportFrom)), script.name
        assert "_bootstrap" in ast.unparse(first), f"{script.name}: does not import _bootstrap first"
        after_imports = next(n for n in body if not isinstance(n, (ast.Import, ast.ImportFrom)))
        assert ast.unparse(after_imports) == "imports_done()", f"{script.name}: imports_done() not right after imports"
        position = body.index(after_imports)
        later = [n.lineno for n in body[position:] if isinstance(n, (ast.Import, ast.ImportFrom))]
        assert not later, f"{script.name}: top-level imports after imports_done() at lines {later}"
        checked += 1
    assert checked >= 19
