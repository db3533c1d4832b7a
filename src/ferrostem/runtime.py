"""What every Snakemake script does first: log to the rule's log file (stderr is redirected there)."""

from __future__ import annotations

import atexit
import gc
import importlib
import importlib.util
import logging
import sys
import types
import warnings
from typing import Any


def script_logging(level: int = logging.INFO) -> logging.Logger:
    logging.basicConfig(
        stream=sys.stderr, level=level, force=True, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.captureWarnings(True)
    warnings.simplefilter("default")
    return logging.getLogger("ferrostem")


def pause_collection_for_imports() -> None:
    """Switch the cyclic garbage collector off while a job script imports its libraries (`_bootstrap` calls it;
    the script calls `imports_done` after its last import).

    A job's imports build 100,000-350,000 objects that live until it ends (modules, classes, functions), and the
    collector's full passes, triggered each time that heap grows by a quarter, walk all of them again: 0.1-0.5 s
    of a demo job's CPU before its first line runs (gc.callbacks, measured), for nothing, since imports leave no
    cyclic garbage.
    """
    gc.disable()


def imports_done() -> None:
    """Switch the collector back on with everything imported so far moved out of its reach (`gc.freeze`: the
    permanent generation), and freeze what is left at exit too, where Python's last passes would walk the whole
    heap once more (0.1-0.3 s per job). Garbage the job makes from here on is collected as usual; at exit,
    cycles left are not finalised by a last pass, which nothing here relies on (every output is written, closed
    and renamed into place before the script ends, files.atomic_write; logging flushes its handlers at exit).

    Together, in the demo: 11.9 s of the 158 s of CPU were collector passes; the whole run takes 9-11 % less
    CPU (docs/performance.md). Nothing a job computes or writes depends on when the collector runs.
    """
    gc.freeze()
    gc.enable()
    atexit.register(gc.freeze)


def keep_block_temporaries_in_heap() -> bool:
    """Tell glibc's malloc (mallopt(3)) to keep freed blocks of up to 32 MB in the heap; True where it could.

    The vectorised DESeq2 engine works on gene blocks whose temporaries are about 16 MB each. With glibc's dynamic
    thresholds such arrays go back to the kernel as soon as the free space at the heap's top passes the trim
    threshold, and the next block's arrays come back as fresh zeroed pages: at TCGA size 1.3 million page faults
    and 14 s of system time in a DE job. A fixed 32 MB mmap threshold and a 128 MB trim threshold keep them in the
    heap (0.65 million faults, 7 s; peak RSS about 50 MB higher). Allocation policy only: the results are the same.
    Elsewhere than glibc (macOS, musl) nothing changes.
    """
    import ctypes
    import ctypes.util

    libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
    if not hasattr(libc, "mallopt"):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's malloc.h
    return bool(libc.mallopt(m_mmap_threshold, 32 * 2**20)) and bool(libc.mallopt(m_trim_threshold, 128 * 2**20))


def single_threaded_blas() -> Any:
    """A context in which BLAS runs on one thread (threadpoolctl): for the many small products of per-gene fits,
    resamples and small SVDs, where a threaded OpenBLAS spends more CPU handing work to its threads than on it."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


class _DeferredPackage(types.ModuleType):
    """A package whose `__init__` has not run yet: it runs at the first look-up of a name the package has not got
    (any `pkg.name` or `from pkg import name` of something that is not an already imported submodule), so code
    that uses the whole package still gets the whole package."""

    def __getattr__(self, name: str) -> Any:
        # an ordinary module from here on, so the __init__'s own look-ups (`from . import sub`) take the usual path
        self.__class__ = types.ModuleType
        try:
            self.__spec__.loader.exec_module(self)
        except BaseException:
            sys.modules.pop(self.__name__, None)  # as a failed import leaves it
            raise
        return getattr(self, name)


def import_submodule(name: str) -> types.ModuleType:
    """`importlib.import_module(name)` for a dotted `name` whose top-level package's `__init__` imports much more
    than the submodule needs (inmoose's `__init__` imports all of edgepy, pycombat, deseq2, consensus clustering
    and cohort QC, with seaborn and scikit-learn, when the array DE uses `inmoose.limma` only).

    Where the package is not imported yet, it is registered without running its `__init__`
    (`importlib.util.module_from_spec`, the documented way to create a module before executing it), then the
    submodule is imported through it: the same files, the same functions. The `__init__` runs as soon as anything
    asks the package for a name it does not hold (`_DeferredPackage`). Where the package is already imported,
    this is `import_module`.
    """
    package = name.partition(".")[0]
    if package not in sys.modules:
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.submodule_search_locations is not None and spec.loader is not None:
            module = importlib.util.module_from_spec(spec)
            module.__class__ = _DeferredPackage
            sys.modules[package] = module
    return importlib.import_module(name)
