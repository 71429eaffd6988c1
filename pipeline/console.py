"""Keeps the console readable: TensorFlow's C++ info lines and warnings that TFX 1.21 and
Beam print on every run and that need no action are left out. Everything else still shows.

Must run before TensorFlow is imported; the environment variable reaches Beam's worker
processes too.
"""

import logging
import os

# TFX 1.21 without ZetaSQL, and Beam's workers' option parsing: said once per component.
_HARMLESS_WARNINGS = (
    "ArtifactQuery.property_predicate is not supported",
    "Fallback to non-ZetaSQL contexts execution query",
)
_CHATTY_LOGGERS = ("apache_beam.runners.portability.local_job_service",)


class _DropHarmless(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(text in message for text in _HARMLESS_WARNINGS)


def quiet_known_noise() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.getLogger("absl").addFilter(_DropHarmless())
    for name in _CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
