"""Keeps the console readable: TensorFlow's C++ info and start-up lines and the warnings that
TFX 1.21, TFDS, Beam and TFMA print on every run, which a user cannot act on, are left out, and
so are progress bars when the console is not a terminal. Everything else still shows.

They must run before TensorFlow is imported; the environment variables reach Beam's worker
processes too.
"""

import atexit
import logging
import os
import re
import sys
import threading

# Library warnings printed on every run, by the logger that prints them:
_HARMLESS_WARNINGS = {
    # TFX 1.21 without ZetaSQL, and Beam's workers' option parsing: said once per component.
    "absl": (
        "ArtifactQuery.property_predicate is not supported",
        "Fallback to non-ZetaSQL contexts execution query",
        # TFDS, while it prepares the data in a new data dir.
        "has no dataset_info.json",
    ),
    # TFMA 0.52 reads its own outputs with TF's deprecated TFRecord reader (its writers and
    # eval_config_writer), which TensorFlow announces as a deprecation of TFMA's call.
    "tensorflow": ("tf_record_iterator (from tensorflow.python.lib.io.tf_record) is deprecated",),
}
_CHATTY_LOGGERS = ("apache_beam.runners.portability.local_job_service",)

# Lines TensorFlow's C++ runtime writes to the process's stderr while it loads, before any
# Python setting can reach its logger (abseil logs everything before InitializeLog()).
_NATIVE_STARTUP_LINES = (
    re.compile(rb"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"),
    re.compile(rb"I\d{4} [\d:.]+ +\d+ cudart_stub\.cc:\d+\] Could not find cuda drivers on your machine"),
)
# Said on every machine without an NVIDIA driver, where there is no GPU to initialise; kept
# where a driver is installed, since a failing cuInit there is something to fix.
_CUINIT_WITHOUT_DRIVER = re.compile(rb"E\d{4} [\d:.]+ +\d+ cuda_platform\.cc:\d+\] failed call to cuInit")
NVIDIA_DRIVER_DEVICE = "/dev/nvidiactl"


class _DropHarmless(logging.Filter):
    def __init__(self, texts: tuple[str, ...]):
        super().__init__()
        self._texts = texts

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(text in message for text in self._texts)


def quiet_known_noise() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for name, texts in _HARMLESS_WARNINGS.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropHarmless) for f in logger.filters):
            logger.addFilter(_DropHarmless(texts))
    for name in _CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


def no_progress_bars_off_terminal() -> None:
    """Progress bars (TFDS's, drawn by tqdm) redraw themselves with carriage returns and cursor
    movements (ESC[A), which a log or CI output keeps as they are: they are off when the console
    is not a terminal. tqdm takes TQDM_DISABLE as the default of its `disable`, here and in the
    processes this one starts. Before drop_native_noise, which makes file descriptor 2 a pipe."""
    if not os.isatty(2):
        os.environ.setdefault("TQDM_DISABLE", "1")


def native_noise_patterns() -> tuple[re.Pattern, ...]:
    if os.path.exists(NVIDIA_DRIVER_DEVICE):
        return _NATIVE_STARTUP_LINES
    return (*_NATIVE_STARTUP_LINES, _CUINIT_WITHOUT_DRIVER)


def drop_native_noise() -> None:
    """Routes file descriptor 2 through a thread that drops TensorFlow's native start-up lines.

    For the CLI process only (it owns the console). Each native log line is one write, so
    whole lines are matched; a partial line (a progress bar's carriage-return updates) is
    passed on at once. At exit the descriptor is restored and the rest is written out.
    """
    patterns = native_noise_patterns()
    console_fd = os.dup(2)
    read_fd, write_fd = os.pipe()
    sys.stderr.flush()
    os.dup2(write_fd, 2)
    os.close(write_fd)

    def keep(line: bytes) -> bool:
        return not any(pattern.match(line) for pattern in patterns)

    def forward() -> None:
        pending = b""
        while True:
            chunk = os.read(read_fd, 1 << 16)
            if not chunk:
                break
            *lines, pending = (pending + chunk).split(b"\n")
            kept = b"".join(line + b"\n" for line in lines if keep(line))
            if pending and not any(pattern.match(pending) for pattern in patterns):
                kept, pending = kept + pending, b""
            if kept:
                os.write(console_fd, kept)
        if pending and keep(pending):
            os.write(console_fd, pending)

    thread = threading.Thread(target=forward, name="native-stderr-filter", daemon=True)
    thread.start()

    def restore() -> None:
        sys.stderr.flush()
        os.dup2(console_fd, 2)  # closes the pipe's last write end held by this process
        thread.join(timeout=2)

    global _restore_stderr
    _restore_stderr = restore
    atexit.register(restore)


_restore_stderr = None


def restore_stderr() -> None:
    """Writes out what the filter holds and gives file descriptor 2 back (before os._exit,
    which runs no exit handlers); does nothing when the filter is not installed."""
    if _restore_stderr is not None:
        _restore_stderr()
