"""SIGTERM / SIGINT become a request to stop at the next step boundary.

Clusters preempt jobs with SIGTERM and users press Ctrl-C; in both cases the loop should finish
the step it is in, write a checkpoint and exit cleanly, so that rerunning the same command
resumes. A second SIGINT while waiting raises KeyboardInterrupt at once (the user insists).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType

# What `signal.signal` takes and returns: a handler, SIG_DFL/SIG_IGN (ints) or None.
_Handler = Callable[[int, FrameType | None], object] | int | None


class StopRequest:
    """Context manager that records the first SIGTERM/SIGINT instead of dying.

    `signum` is None until a signal arrives. Handlers are only installed from the main thread
    (Python's rule); elsewhere the object is inert. Previous handlers are restored on exit.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, _Handler] = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum
