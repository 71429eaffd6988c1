"""A failed step reads as one line on the console; its tracebacks go to the step's log file.

While a local run runs, a log record at ERROR or above that carries a traceback (Beam's, when
a DoFn raises; the messages a Beam job service sends back about a failed job, which Beam's
PortableRunner logs as they come) is written to `<pipeline root>/logs/<run start>/<step>.log`
instead of the console, and so is the traceback of the error a failed step raises. The line
`[pipeline] FAILED: ...` (PipelineFailed) gives the cause, from `one_line`, and that file.
"""

from __future__ import annotations

import datetime
import logging
import os
import re
import sys
import threading
import traceback
from typing import Callable, Optional

TRACEBACK_HEADER = "Traceback (most recent call last):"
LOGS_FOLDER = "logs"
# The log file of a failure outside any step (the pipeline's compilation, say).
PIPELINE_LOG = "pipeline"
_FORMATTER = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
_DIVERTED = "_written_to_step_log"  # set on a record once written, whichever handler saw it first

# A gRPC error as Python prints it (grpc._channel._InactiveRpcError and the like), on one line.
_GRPC_ERROR = re.compile(r"(?:[\w.]+: )?<_?\w*RpcError of RPC that terminated with: status = StatusCode\.(\w+) "
                         r'details = "(.*?)" debug_error_string = ".*?"\s*>')
# A TensorFlow status's decorations: the function node it ran in, the op and its (often empty) name.
_TF_FUNCTION_NODE = re.compile(r"\{\{function_node [^}]*\}\}\s*")
_TF_OP = re.compile(r" \[Op:\w+\](?: name:(?: [^\s\[]\S*)?)?")
# A fully qualified exception name before its message: tensorflow.python...errors_impl.DataLossError.
_QUALIFIED_NAME = re.compile(r"\b(?:[a-z_]\w*\.)+([A-Z]\w*)(?=: )")


def one_line(error: BaseException) -> str:
    """The error's type and message on one line; a traceback inside the message (a Beam job's,
    as the job service reports it) is reduced to the exception it ends with."""
    return f"{type(error).__name__}: {without_traceback(str(error))}"


def without_traceback(message: str) -> str:
    """What precedes the first traceback in `message`, then the exception the last one ends
    with, tidied: a gRPC error as its status and details, TensorFlow's op decorations and
    module paths left out."""
    head, _, _ = message.partition(TRACEBACK_HEADER)
    _, _, last = message.rpartition(TRACEBACK_HEADER)
    raised = raised_exception(last) if TRACEBACK_HEADER in message else ""
    return tidy(" ".join(part for part in (" ".join(head.split()), raised) if part))


def raised_exception(traceback_text: str) -> str:
    """The exception a printed traceback ends with, all its lines joined: the text after the
    last frame (a `  File "..."` line and its indented source lines)."""
    lines = [line for line in traceback_text.splitlines() if line.strip()]
    frames = [index for index, line in enumerate(lines) if line.startswith('  File "')]
    rest = lines[frames[-1] + 1:] if frames else lines
    while rest and rest[0][:1].isspace():
        rest = rest[1:]
    return " ".join(line.strip() for line in rest)


def tidy(text: str) -> str:
    text = _GRPC_ERROR.sub(r"gRPC \1: \2", text)
    text = _TF_OP.sub("", _TF_FUNCTION_NODE.sub("", text))
    return _QUALIFIED_NAME.sub(r"\1", text)


def run_log_dir(pipeline_root: str) -> str:
    """`<pipeline root>/logs/<now, local time>`: the folder of the step logs of a run starting now."""
    return os.path.join(pipeline_root, LOGS_FOLDER, datetime.datetime.now().strftime("%Y-%m-%dT%H-%M-%S"))


class StepLogs:
    """While in use, diverts traceback-bearing error records of the step `current_step()`
    names from the console (the root logger's handlers) to that step's log file."""

    def __init__(self, log_dir: str, current_step: Callable[[], Optional[str]]):
        self.log_dir = log_dir
        self.current_step = current_step
        self.written: dict[str, str] = {}  # the log file of each step that wrote one
        self._lock = threading.Lock()
        self._filter = _ToStepLog(self)
        self._handlers: list[logging.Handler] = []

    def __enter__(self) -> "StepLogs":
        # Every library logs through these by then: Beam's PipelineOptions and TFX's imports
        # call logging.basicConfig() (a no-op once the root logger has a handler).
        self._handlers = [*logging.getLogger().handlers, *([logging.lastResort] if logging.lastResort else [])]
        for handler in self._handlers:
            handler.addFilter(self._filter)
        return self

    def __exit__(self, error_type, *_) -> None:
        for handler in self._handlers:
            handler.removeFilter(self._filter)
        if error_type is None and self.written:  # the steps went on: say where their errors went
            print(f"[pipeline] errors with tracebacks were logged while the run went on: "
                  f"{', '.join(self.written.values())}", file=sys.stderr, flush=True)

    def path(self, step: str) -> str:
        return os.path.join(self.log_dir, f"{step}.log")

    def write(self, step: str, text: str) -> str:
        """Appends `text` to the step's log file; returns its path."""
        path = self.path(step)
        with self._lock:
            os.makedirs(self.log_dir, exist_ok=True)
            with open(path, "a", encoding="utf-8") as log:
                log.write(text.rstrip("\n") + "\n")
            self.written[step] = path
        return path

    def write_failure(self, step: Optional[str], error: BaseException) -> str:
        """The error's whole traceback (its causes included) in the step's log; its path."""
        return self.write(step or PIPELINE_LOG, f"{step or 'The pipeline'} failed:\n"
                                                 + "".join(traceback.format_exception(error)))


class _ToStepLog(logging.Filter):
    def __init__(self, logs: StepLogs):
        super().__init__()
        self._logs = logs

    def filter(self, record: logging.LogRecord) -> bool:
        step = self._logs.current_step()
        if step is None or record.levelno < logging.ERROR or not carries_traceback(record):
            return True
        if not getattr(record, _DIVERTED, False):
            try:
                self._logs.write(step, _FORMATTER.format(record))
            except OSError:
                return True  # no log file: the console keeps the record
            setattr(record, _DIVERTED, True)
        return False


def carries_traceback(record: logging.LogRecord) -> bool:
    return bool(record.exc_info) or TRACEBACK_HEADER in record.getMessage()
