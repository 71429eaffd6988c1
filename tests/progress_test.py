"""Live progress lines come from LocalDagRunner's own component log records."""

import io
import itertools

from absl import logging as absl_logging

from pipeline.progress import ComponentProgress


def test_start_and_end_of_each_component_with_duration():
    out = io.StringIO()
    ticks = itertools.count(start=10.0, step=2.5)
    with ComponentProgress(stream=out, clock=lambda: next(ticks)) as progress:
        absl_logging.info("Component %s is running.", "Trainer")
        assert progress.current == "Trainer"
        absl_logging.info("Some other TFX line %s", "x")
        absl_logging.info("Component %s is finished.", "Trainer")
    assert out.getvalue().splitlines() == ["[pipeline] Trainer started", "[pipeline] Trainer finished in 2.5 s"]
    assert progress.seconds == {"Trainer": 2.5}
    assert progress.current is None
