"""Progress of long work as plain lines at intervals: done of total, rate, ETA; for downloads also bytes.

Under Snakemake a job's stderr is its log file, where tqdm bars are hidden (and a bar redrawn with carriage
returns is unreadable in a cluster log). So each line goes to the job log through logging and, when stderr was
redirected, also to the terminal (or cluster output file) the job was started from, prefixed `[ferrostem]`.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

log = logging.getLogger(__name__)
# Seconds between lines unless a report is given its own interval: often enough to see that a cluster job
# moves, rare enough that a log stays readable.
DEFAULT_INTERVAL = 15.0


def size_text(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def duration_text(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def rate_text(per_second: float, unit: str) -> str:
    if per_second >= 10:
        return f"{per_second:.0f} {unit}/s"
    if per_second >= 1:
        return f"{per_second:.1f} {unit}/s"
    return f"{per_second * 60:.1f} {unit}/min"


class ProgressReport:
    """Lines `label: done/total unit (share), rate, ETA` every `interval` seconds, and a closing `done in`.

    `total` counts items (files, genes, signatures, folds) in `unit`; a `transfer` also counts bytes
    (`total_bytes`, when known) and takes its rate and ETA from them. With `always`, a starting line and the
    closing line are written however short the work; otherwise a report speaks only once `interval` has passed,
    so quick work stays silent. Use as a context manager, or call close(). Lines are logged through `logger`.
    """

    def __init__(
        self,
        label: str,
        total: int | None = None,
        *,
        unit: str = "files",
        total_bytes: int | None = None,
        transfer: bool = False,
        interval: float | None = None,
        always: bool = True,
        clock: Callable[[], float] = time.monotonic,
        terminal: Any = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.label, self.total, self.unit, self.total_bytes = label, total, unit, total_bytes
        self.transfer, self.always, self.clock = transfer, always, clock
        self.interval = DEFAULT_INTERVAL if interval is None else interval
        self.terminal = (
            terminal if terminal is not None else (sys.__stderr__ if sys.stderr is not sys.__stderr__ else None)
        )
        self.logger = logger or log  # the caller's, so that a job log names the step
        self.start = self.last = clock()
        self.done = 0
        self.bytes_done = 0
        self.lines: list[str] = []
        if always:
            parts = [f"{total if total is not None else '?'} {unit}"]
            if transfer:
                parts.append(size_text(total_bytes) if total_bytes else "size unknown")
            self._emit(f"{label}: starting, " + ", ".join(parts))

    def _emit(self, line: str) -> None:
        self.lines.append(line)
        self.logger.info("%s", line)
        if self.terminal is not None:
            print(f"[ferrostem] {line}", file=self.terminal, flush=True)

    def line(self) -> str:
        elapsed = max(self.clock() - self.start, 1e-9)
        parts = []
        if self.total is not None or not self.transfer:
            share = f" ({self.done / self.total:.0%})" if self.total and not self.transfer else ""
            parts.append(f"{self.done}/{self.total if self.total is not None else '?'} {self.unit}{share}")
        if self.transfer:
            rate = self.bytes_done / elapsed
            share = f" ({self.bytes_done / self.total_bytes:.0%})" if self.total_bytes else ""
            parts.append(
                size_text(self.bytes_done) + (f" of {size_text(self.total_bytes)}" if self.total_bytes else "") + share
            )
            parts.append(f"{size_text(rate)}/s")
            remaining = (self.total_bytes - self.bytes_done) / rate if self.total_bytes and rate > 0 else None
        else:
            rate = self.done / elapsed
            parts.append(rate_text(rate, self.unit))
            remaining = (self.total - self.done) / rate if self.total and rate > 0 else None
        if remaining is not None and remaining > 0:
            parts.append(f"ETA {duration_text(remaining)}")
        return f"{self.label}: " + ", ".join(parts)

    def _maybe_report(self) -> None:
        now = self.clock()
        if now - self.last >= self.interval:
            self.last = now
            self._emit(self.line())

    def add(self, n: int = 1) -> None:
        """`n` more items done."""
        self.done += n
        self._maybe_report()

    def add_bytes(self, n: int) -> None:
        self.bytes_done += n
        self._maybe_report()

    def close(self) -> None:
        """The closing line: always with `always`, otherwise only if the work was reported on."""
        if self.always or self.lines:
            self._emit(f"{self.line()}, done in {duration_text(self.clock() - self.start)}")

    def __enter__(self) -> ProgressReport:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if kind is None:  # a failed step says why elsewhere; a "done in" line would read as success
            self.close()
