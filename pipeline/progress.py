"""Live progress: each component's start and end with its duration, from TFX's own log lines."""

import logging
import sys
import time
from typing import Callable, Optional, TextIO

_RUNNING = "Component %s is running."
_FINISHED = "Component %s is finished."


class ComponentProgress(logging.Handler):
    """Watches LocalDagRunner's 'Component X is running/finished.' records (absl logger)."""

    def __init__(self, stream: TextIO = sys.stdout, clock: Callable[[], float] = time.monotonic):
        super().__init__(level=logging.INFO)
        self._stream = stream
        self._clock = clock
        self._started: dict[str, float] = {}
        self.seconds: dict[str, float] = {}
        self.current: Optional[str] = None

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg not in (_RUNNING, _FINISHED) or not record.args:
            return
        node_id = str(record.args[0])
        if record.msg == _RUNNING:
            self._started[node_id] = self._clock()
            self.current = node_id
            self._print(f"[pipeline] {node_id} started")
        else:
            elapsed = self._clock() - self._started.get(node_id, self._clock())
            self.seconds[node_id] = elapsed
            self.current = None
            self._print(f"[pipeline] {node_id} finished in {elapsed:.1f} s")

    def _print(self, line: str) -> None:
        print(line, file=self._stream, flush=True)

    def __enter__(self) -> "ComponentProgress":
        absl_logger = logging.getLogger("absl")
        self._previous_level = absl_logger.level
        absl_logger.setLevel(logging.INFO)
        # TFX's other INFO lines stay quiet: only warnings reach the console.
        self._quiet = _MinLevelFilter(logging.WARNING)
        for handler in logging.getLogger().handlers:
            handler.addFilter(self._quiet)
        absl_logger.addHandler(self)
        return self

    def __exit__(self, *exc_info) -> None:
        absl_logger = logging.getLogger("absl")
        absl_logger.removeHandler(self)
        absl_logger.setLevel(self._previous_level)
        for handler in logging.getLogger().handlers:
            handler.removeFilter(self._quiet)


class _MinLevelFilter(logging.Filter):
    def __init__(self, level: int):
        super().__init__()
        self._level = level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= self._level
