"""Live progress comes from wrapping TFX's Launcher.launch, once per component."""

import io
import itertools
import types

import pytest
from tfx.orchestration.portable import launcher

from pipeline.runners.progress import ComponentProgress


def fake_launcher(node_id):
    return types.SimpleNamespace(_pipeline_node=types.SimpleNamespace(node_info=types.SimpleNamespace(id=node_id)))


def run_with_progress(monkeypatch, launch_behaviour):
    monkeypatch.setattr(launcher.Launcher, "launch", lambda self: launch_behaviour(self))
    out = io.StringIO()
    ticks = itertools.count(start=10.0, step=2.5)
    progress = ComponentProgress(stream=out, clock=lambda: next(ticks))
    return progress, out


def test_start_and_end_of_each_component_with_duration(monkeypatch):
    progress, out = run_with_progress(monkeypatch, lambda self: "launched")
    with progress:
        assert launcher.Launcher.launch(fake_launcher("Trainer")) == "launched"
    assert out.getvalue().splitlines() == ["[pipeline] Trainer started (step 6 of 10)",
                                           "[pipeline] Trainer finished in 2.5 s"]
    assert progress.seconds == {"Trainer": 2.5}
    assert progress.current is None


def test_a_step_the_table_lacks_still_shows(monkeypatch):
    progress, out = run_with_progress(monkeypatch, lambda self: "launched")
    with progress:
        launcher.Launcher.launch(fake_launcher("ModelCard"))
    assert out.getvalue().splitlines() == ["[pipeline] ModelCard started", "[pipeline] ModelCard finished in 2.5 s"]


def test_a_failing_component_is_named_and_the_launcher_restored(monkeypatch):
    def fail(self):
        raise RuntimeError("executor crashed")

    progress, out = run_with_progress(monkeypatch, fail)
    patched = launcher.Launcher.launch
    with progress:
        with pytest.raises(RuntimeError, match="executor crashed"):
            launcher.Launcher.launch(fake_launcher("Evaluator"))
    assert progress.current == "Evaluator"
    assert out.getvalue().splitlines()[-1] == "[pipeline] Evaluator FAILED in 2.5 s"
    assert launcher.Launcher.launch is patched
