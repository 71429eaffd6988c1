"""Live progress: each component's start and end with its duration.

LocalDagRunner launches every component through TFX's portable `Launcher.launch`, one call
per component, so wrapping that method times exactly one component's whole launch (driver,
executor, publishing to ML Metadata), whatever the components do to logging meanwhile.
"""

import sys
import time
from typing import Callable, Optional, TextIO

from tfx.orchestration.portable import launcher


class ComponentProgress:
    def __init__(self, stream: TextIO = sys.stdout, clock: Callable[[], float] = time.monotonic):
        self._stream = stream
        self._clock = clock
        self.seconds: dict[str, float] = {}
        self.current: Optional[str] = None

    def __enter__(self) -> "ComponentProgress":
        self._original_launch = launcher.Launcher.launch
        original, progress = self._original_launch, self

        def timed_launch(launcher_self, *args, **kwargs):
            node_id = launcher_self._pipeline_node.node_info.id  # pylint: disable=protected-access
            progress.component_started(node_id)
            succeeded = False
            try:
                result = original(launcher_self, *args, **kwargs)
                succeeded = True
                return result
            finally:
                progress.component_ended(node_id, succeeded)

        launcher.Launcher.launch = timed_launch
        return self

    def __exit__(self, *exc_info) -> None:
        launcher.Launcher.launch = self._original_launch

    def component_started(self, node_id: str) -> None:
        self._started = self._clock()
        self.current = node_id
        self._print(f"[pipeline] {node_id} started")

    def component_ended(self, node_id: str, succeeded: bool) -> None:
        elapsed = self._clock() - self._started
        self.seconds[node_id] = elapsed
        if succeeded:
            self.current = None
        self._print(f"[pipeline] {node_id} {'finished' if succeeded else 'FAILED'} in {elapsed:.1f} s")

    def _print(self, line: str) -> None:
        print(line, file=self._stream, flush=True)
