"""The demo's generated inputs (the sample archive and the pre-trained base, data/generated/),
which every test that runs the demo profile needs: made once per machine, about 2 minutes on
2 cores, most of it pre-training.

Under `make test` the controller starts making them in the background once the workers have
collected the tests (`BackgroundMaker`), and tests/support/xdist_groups.py's scheduler gives the
workers the groups that do not need them until they are made. The `demo_inputs` fixture
(tests/conftest.py) waits for them on the makers' lock (data/generation_lock.py), or makes them
itself where no controller did."""

from __future__ import annotations

import signal
import subprocess
import sys
from typing import Callable

# `make()` in a process of its own, started in the checkout's top (as tests/support/task_zygote.py is).
MAKE_COMMAND = "from tests.support.demo_inputs import make; make()"


def make() -> None:
    """What `python -m pipeline run --profile demo` makes before its first step: makes the demo's
    inputs, or waits while another process makes them, or returns at once."""
    from pipeline.config.settings import load_profile
    from pipeline.runners.inputs import prepare_inputs

    prepare_inputs(load_profile("demo"))


class BackgroundMaker:
    """`python -c MAKE_COMMAND` (or `command`) in a process of its own, its output in `log_path`."""

    def __init__(self, project_root: str, log_path: str, announce: Callable[[str], None] = print,
                 command: str = MAKE_COMMAND):
        self.project_root = project_root
        self.command = command
        self.log_path = log_path
        self.announce = announce
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.announce(f"making the demo's generated inputs in the background, if missing (log: {self.log_path}); "
                      "the tests that need them wait")
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen([sys.executable, "-c", self.command], cwd=self.project_root,
                                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def made(self) -> bool:
        """True once the maker has ended (or was never started): the inputs are made, or each
        test that needs them will try again and fail with the cause."""
        return self.process is None or self.process.poll() is not None

    def failure(self) -> str | None:
        """One line naming the log when the maker ended with an error."""
        if self.process is None or self.process.poll() in (None, 0):
            return None
        return f"making the demo's inputs in the background failed (exit status {self.process.returncode}): {self.log_path}"

    def stop(self) -> None:
        """Interrupts a maker still running and waits for it (the makers write under a temporary
        name and rename, so an interrupted one leaves no input half-written)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
