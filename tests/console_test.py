"""Known harmless TFX/Beam warnings are left out of the console; other warnings still show."""

import logging
import os
import pty
import subprocess
import sys

from pipeline.cli import console


def test_harmless_tfx_warnings_are_dropped_and_others_kept(caplog):
    console.quiet_known_noise()
    absl_logger = logging.getLogger("absl")
    with caplog.at_level(logging.WARNING):
        absl_logger.warning("ArtifactQuery.property_predicate is not supported.")
        absl_logger.warning("Fallback to non-ZetaSQL contexts execution query due to: %s", "x")
        absl_logger.warning("Examples artifact has no payload_format")
    assert [r.getMessage() for r in caplog.records] == ["Examples artifact has no payload_format"]


def test_tfmas_deprecated_tfrecord_reader_warning_is_dropped_and_other_tensorflow_warnings_kept():
    console.quiet_known_noise()
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    tf_logger = logging.getLogger("tensorflow")
    tf_logger.addHandler(handler)
    try:
        # TensorFlow's deprecation message, as TFMA's writers trigger it.
        tf_logger.warning(
            "From %s: %s (from %s) is deprecated and will be removed %s.\nInstructions for updating:\n%s",
            "/site-packages/tensorflow_model_analysis/writers/metrics_plots_and_validations_writer.py:127",
            "tf_record_iterator", "tensorflow.python.lib.io.tf_record", "in a future version",
            "Use eager execution and: \n`tf.data.TFRecordDataset(path)`",
        )
        tf_logger.warning("Some other TensorFlow warning")
    finally:
        tf_logger.removeHandler(handler)
    assert [record.getMessage() for record in records] == ["Some other TensorFlow warning"]


def test_beam_worker_chatter_is_raised_to_errors_only():
    console.quiet_known_noise()
    assert logging.getLogger("apache_beam.runners.portability.local_job_service").getEffectiveLevel() == logging.ERROR


NATIVE_LINES = (
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    b"I0000 00:00:1796295396.629470   13311 cudart_stub.cc:31] Could not find cuda drivers on your machine, "
    b"GPU will not be used.\n"
    b"E0000 00:00:1796295427.087413   13311 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error\n"
)


def test_tensorflows_native_startup_lines_are_dropped_and_other_stderr_kept():
    """In a process of its own, as the CLI runs: fd 2 is what TensorFlow's C++ runtime writes to."""
    script = (
        "import os, sys\n"
        "from pipeline.cli import console\n"
        "console.drop_native_noise()\n"
        f"os.write(2, {NATIVE_LINES!r})\n"
        "os.write(2, b'E0000 00:00:1.0 1 other.cc:1] a native error that matters\\n')\n"
        "print('a Python warning', file=sys.stderr)\n"
        "os.write(2, b'progress 10%\\rprogress 20%')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr
    expected = [b"E0000 00:00:1.0 1 other.cc:1] a native error that matters", b"a Python warning",
                b"progress 10%\rprogress 20%"]
    if os.path.exists(console.NVIDIA_DRIVER_DEVICE):  # a driver is installed: a failing cuInit is news
        expected.insert(0, NATIVE_LINES.splitlines()[2])
    assert result.stderr.split(b"\n") == expected


# TFDS's nested progress bars, as it draws them while it prepares a dataset (tqdm).
NESTED_PROGRESS_BARS = (
    "from pipeline.cli import console\n"
    "console.no_progress_bars_off_terminal()\n"
    "console.drop_native_noise()\n"
    "from tqdm import auto\n"
    "with auto.tqdm(total=2, desc='Generating splits...') as splits:\n"
    "    for _ in auto.tqdm(range(3), desc='Generating train examples...', leave=False):\n"
    "        pass\n"
    "    splits.update(2)\n"
    "print('done', flush=True)\n"
)
CURSOR_UP = b"\x1b[A"


def test_progress_bars_are_left_out_when_the_console_is_not_a_terminal():
    result = subprocess.run([sys.executable, "-c", NESTED_PROGRESS_BARS], capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"done\n" and result.stderr == b""


def test_progress_bars_still_show_on_a_terminal():
    """The same bars with the process's stderr a pseudo-terminal: drawn, cursor codes and all."""
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen([sys.executable, "-c", NESTED_PROGRESS_BARS], stdout=subprocess.PIPE,
                                   stderr=terminal)
        os.close(terminal)
        drawn = b""
        while chunk := read_or_end(controller):
            drawn += chunk
        assert process.wait(timeout=120) == 0
    finally:
        os.close(controller)
    assert b"Generating train examples..." in drawn and CURSOR_UP in drawn


def read_or_end(fd: int) -> bytes:
    """What a pseudo-terminal's controller reads; b"" once the other side is closed (EIO on Linux)."""
    try:
        return os.read(fd, 1 << 16)
    except OSError:
        return b""
