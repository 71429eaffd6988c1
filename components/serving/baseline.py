"""The baseline: the newest version of the served folder that holds a loadable SavedModel
(the model TF Serving serves), the newer ones skipped on the way, and the gate record.

A version that does not load (an empty folder left by an interrupted copy, a corrupt
saved_model.pb, missing variables) is skipped, since TF Serving cannot load it either and
keeps serving the older one. The gate record, `.<model name>.gate.json` beside the serving
folder (outside it: TF Serving and the Pusher see only version folders), keeps each blessed
candidate's fingerprint and the served state it was blessed under (`gate_baseline`), so that
a cached verdict holds only while the model served is the one it was compared against or the
candidate it blessed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Optional

import tensorflow as tf
from tfx.dsl.io import fileio

from components.serving import versions as versions_lib
from components.serving.loadable import unloadable_reason

GATE_RECORD_SUFFIX = ".gate.json"
GATE_RECORD_ENTRIES = 100  # the newest blessed candidates kept in the record


@dataclasses.dataclass(frozen=True)
class SkippedVersion:
    version: str
    path: str
    reason: str


@dataclasses.dataclass(frozen=True)
class Baseline:
    """The newest loadable version in a serving folder (None when there is none) and the newer
    versions skipped on the way to it."""

    path: Optional[str]
    skipped: tuple[SkippedVersion, ...] = ()


def find_baseline(serving_dir: str, signatures: tuple[str, ...] = ()) -> Baseline:
    """The newest version in `serving_dir` that holds a loadable SavedModel with `signatures`;
    the newer ones that do not, with the reason, as skipped."""
    skipped = []
    for number, path in versions_lib.versions(serving_dir):
        reason = unloadable_reason(path, signatures)
        if reason is None:
            return Baseline(path=path, skipped=tuple(skipped))
        skipped.append(SkippedVersion(version=str(number), path=path, reason=" ".join(reason.split())))
    return Baseline(path=None, skipped=tuple(skipped))


def served_version(serving_dir: str) -> Optional[str]:
    """The newest loadable version folder in `serving_dir` (the one TF Serving serves), or None."""
    return find_baseline(serving_dir).path


def model_fingerprint(model_dir: str) -> str:
    """A short hash of a SavedModel's graph and variables' index (whose entries hold each
    tensor's checksum): the same for the Trainer's model and its pushed copy."""
    digest = hashlib.sha256()
    for name in ("saved_model.pb", os.path.join("variables", "variables.index")):
        path = os.path.join(model_dir, name)
        if fileio.exists(path):
            with fileio.open(path, "rb") as opened:
                digest.update(opened.read())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def gate_record_path(serving_dir: str) -> str:
    base = serving_dir.rstrip("/")
    return os.path.join(os.path.dirname(base), f".{os.path.basename(base)}{GATE_RECORD_SUFFIX}")


def read_gate_record(serving_dir: str) -> dict[str, str]:
    """{candidate fingerprint: the gate key it was blessed under}; {} when unreadable."""
    try:
        with fileio.open(gate_record_path(serving_dir), "r") as opened:
            record = json.loads(opened.read())
        return {str(k): str(v) for k, v in record.items()} if isinstance(record, dict) else {}
    except (OSError, ValueError, tf.errors.OpError):
        return {}


def record_gate_verdict(serving_dir: str, fingerprint: str, key: str) -> None:
    """Remembers that the candidate `fingerprint` was blessed under `key` (written atomically)."""
    record = read_gate_record(serving_dir)
    record.pop(fingerprint, None)
    record[fingerprint] = key
    record = dict(list(record.items())[-GATE_RECORD_ENTRIES:])
    path = gate_record_path(serving_dir)
    fileio.makedirs(os.path.dirname(path))
    temporary = f"{path}.{os.getpid()}.tmp"
    with fileio.open(temporary, "w") as opened:
        opened.write(json.dumps(record, indent=1))
    fileio.rename(temporary, path, overwrite=True)


def gate_baseline(serving_dir: str) -> str:
    """The served state a verdict holds for: "" when no loadable version is served; the gate
    key a served model was blessed under when it is a candidate this gate blessed (pushed
    since: its verdict still holds, and pushing it again would only copy it); otherwise the
    served version, as "<path>#<fingerprint>"."""
    served = served_version(serving_dir)
    if not served:
        return ""
    fingerprint = model_fingerprint(served)
    blessed_under = read_gate_record(serving_dir).get(fingerprint)
    return blessed_under if blessed_under is not None else f"{served}#{fingerprint}"
