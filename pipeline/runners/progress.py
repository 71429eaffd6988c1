"""Live progress: each component's start (its place among the steps of pipeline/steps.py) and
end with its duration, the same lines for a local run and a compiled one.

LocalDagRunner launches every component through TFX's portable `Launcher.launch`, one call
per component, so wrapping that method times exactly one component's whole launch (driver,
executor, publishing to ML Metadata), whatever the components do to logging meanwhile.
"""

import sys
import time
from typing import Callable, Optional, TextIO

from tfx.orchestration.portable import launcher

from pipeline import steps


def started_line(step_id: str) -> str:
    """"[pipeline] Trainer started (step 6 of 9)"; a step the table lacks shows without its place."""
    place = steps.position(step_id)
    return f"[pipeline] {step_id} started" + (f" (step {place} of {len(steps.STEPS)})" if place else "")


def ended_line(step_id: str, succeeded: bool, seconds: float) -> str:
    return f"[pipeline] {step_id} {'finished' if succeeded else 'FAILED'} in {seconds:.1f} s"


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
        self._print(started_line(node_id))

    def component_ended(self, node_id: str, succeeded: bool) -> None:
        elapsed = self._clock() - self._started
        self.seconds[node_id] = elapsed
        if succeeded:
            self.current = None
        self._print(ended_line(node_id, succeeded, elapsed))

    def _print(self, line: str) -> None:
        print(line, file=self._stream, flush=True)
