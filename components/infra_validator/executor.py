"""The InfraValidator's executor: the candidate in TF Serving's loader, every request answered in time.

The verdict is recorded as TFX's InfraValidator records it (custom property `blessed`, 1 or 0,
and an INFRA_BLESSED or INFRA_NOT_BLESSED file), with the reason in a custom property and each
request's outcome in `validation.json` beside the marker.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
from typing import Any, Optional, Sequence

import numpy as np
from absl import logging
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.utils import path_utils

from components.infra_validator import spec
from components.serving import c_loader, requests

BLESSED_PROPERTY = "blessed"
REASON_PROPERTY = "reason"
SECONDS_PROPERTY = "seconds"
BLESSED_FILE, NOT_BLESSED_FILE = "INFRA_BLESSED", "INFRA_NOT_BLESSED"
DETAILS_FILE = "validation.json"
LOADER = "TF Serving's loader (TensorFlow's C++ LoadSavedModel)"
# SignatureDefs TensorFlow keeps for itself (tensorflow/cc/saved_model/constants.h), which TF
# Serving neither lists nor serves.
INTERNAL_SIGNATURES = ("__saved_model_init_op", "__saved_model_train_op")


@dataclasses.dataclass
class Check:
    name: str
    passed: bool
    detail: str
    seconds: float


@dataclasses.dataclass
class Verdict:
    blessed: bool
    reason: str
    seconds: float
    checks: list[Check] = dataclasses.field(default_factory=list)


class Executor(base_executor.BaseExecutor):
    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        model = artifact_utils.get_single_instance(input_dict[spec.MODEL_KEY])
        examples = artifact_utils.get_single_instance(input_dict[spec.EXAMPLES_KEY])
        blessing = artifact_utils.get_single_instance(output_dict[spec.BLESSING_KEY])
        export_dir = path_utils.serving_model_path(model.uri, path_utils.is_old_model_artifact(model))
        split = exec_properties[spec.CANARY_SPLIT_KEY]
        try:
            canary = requests.read_examples(artifact_utils.get_split_uri([examples], split),
                                            int(exec_properties[spec.CANARY_SIZE_KEY]))
        except (requests.CanaryError, ValueError) as error:
            raise ValueError(f"InfraValidator: no canary batch from the {split!r} split: {error}") from error
        verdict = validate(export_dir, canary, float(exec_properties[spec.TIMEOUT_SECONDS_KEY]))
        record(blessing, verdict)
        log = logging.info if verdict.blessed else logging.warning
        log("InfraValidator: %s: %s", "blessed" if verdict.blessed else "NOT blessed", verdict.reason)


def validate(export_dir: str, canary: Sequence[bytes], timeout_seconds: float,
             build_dir: str = c_loader.DEFAULT_BUILD_DIR) -> Verdict:
    """Loads `export_dir` in the C loader, replays its warm-up requests and sends the canary
    batch to every signature; blessed only if every call succeeds within `timeout_seconds`."""
    started = time.monotonic()
    try:
        signatures = c_loader.read_signatures(export_dir)
        warmup = requests.warmup_calls(export_dir)
        calls = warmup + requests.canary_calls(
            {name: sorted(signature.inputs) for name, signature in signatures.items()
             if name not in INTERNAL_SIGNATURES}, canary)
    except (c_loader.CLoaderError, requests.CanaryError) as error:
        return Verdict(False, str(error), time.monotonic() - started)
    groups = loader_groups(calls)
    timed_out = threading.Event()
    # No loader here is the environment's fault, not the model's: CLoaderError propagates.
    models = [c_loader.CSavedModel(export_dir, build_dir) for _ in groups]
    timer = threading.Timer(timeout_seconds, lambda: (timed_out.set(), [model.kill() for model in models]))
    timer.daemon = True
    timer.start()
    outcomes: list[tuple[Optional[str], list[Check]]] = [(None, []) for _ in groups]
    workers = [threading.Thread(target=_run_group, args=(model, group, outcomes, index), daemon=True)
               for index, (model, group) in enumerate(zip(models, groups))]
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    finally:
        timer.cancel()
        for model in models:
            model.kill()
    seconds = time.monotonic() - started
    order = {call.name: index for index, call in enumerate(calls)}
    checks = sorted((check for _, group_checks in outcomes for check in group_checks), key=lambda c: order[c.name])
    failure = next((failure for failure, _ in outcomes if failure is not None), None)
    if timed_out.is_set():
        done = sum(check.passed for check in checks)
        return Verdict(False, f"not answered within {timeout_seconds:g} s in {LOADER} (infra_validator.timeout_seconds; "
                              f"{done} of {len(calls)} requests answered)", seconds, checks)
    if failure is not None:
        return Verdict(False, failure, seconds, checks)
    canaries = len(calls) - len(warmup)
    return Verdict(True, f"loaded in {LOADER}; {len(warmup)} warm-up requests and {canaries} canary batches of "
                         f"{len(canary)} answered in {seconds:.1f} s", seconds, checks)


def loader_groups(calls: Sequence[requests.Call]) -> list[list[requests.Call]]:
    """The calls split between two loader processes that run side by side: the warm-up
    requests with every call to their signatures (as one TF Serving process replays its
    warm-up, then serves), and the other signatures' canaries. A signature's first call pays
    for its graph's optimisation; two processes pay for two at a time."""
    warmup_signatures = {call.signature for call in calls if call.name.startswith(requests.WARMUP_PREFIX)}
    first = [call for call in calls if call.signature in warmup_signatures]
    rest = [call for call in calls if call.signature not in warmup_signatures]
    return [group for group in (first, rest) if group]


def _run_group(model: c_loader.CSavedModel, calls: Sequence[requests.Call],
               outcomes: list[tuple[Optional[str], list[Check]]], index: int) -> None:
    """One loader process's calls; its (first failure or None, checks) into `outcomes[index]`."""
    checks: list[Check] = []
    try:
        failure = _run_calls(model, calls, checks)
        if failure is None:
            model.close()
    except c_loader.CLoaderError as error:
        failure = _loader_failure(error)
    outcomes[index] = (failure, checks)


def _run_calls(model: c_loader.CSavedModel, calls: Sequence[requests.Call], checks: list[Check]) -> Optional[str]:
    """Runs each call, appending its Check; returns the first failure's reason, or None."""
    for call in calls:
        started = time.monotonic()
        try:
            outputs = model.run(call.signature, call.inputs)
            problem = output_problem(outputs, call.batch_size)
        except c_loader.RequestError as error:
            problem = f"answered {error.code_name}: {error.message[:500]}"
        except KeyError as error:
            problem = str(error)
        except c_loader.CLoaderError as error:  # the process died: it did not load, or it crashed
            checks.append(Check(call.name, False, str(error)[-1500:], time.monotonic() - started))
            return _loader_failure(error)
        checks.append(Check(call.name, problem is None, problem or "OK", time.monotonic() - started))
        if problem is not None:
            return f"{call.name} ({call.signature}) failed in {LOADER}: {problem}"
    return None


def output_problem(outputs: dict[str, np.ndarray], batch_size: int) -> Optional[str]:
    """What is wrong with a signature's outputs for a batch, or None: every output has one row
    per input and every number is finite."""
    for key, value in sorted(outputs.items()):
        if value.ndim == 0 or value.shape[0] != batch_size:
            return f"output {key!r} has shape {value.shape} for a batch of {batch_size}"
        if value.dtype != object and not np.all(np.isfinite(value.astype(np.float64))):
            return f"output {key!r} holds values that are not finite"
    return None


def _loader_failure(error: c_loader.CLoaderError) -> str:
    """The loader's own last words ("Could not find variable ..."), not the pipe's."""
    return f"the model does not load or run in {LOADER}: {str(error)[-1500:]}"


def record(blessing: types.Artifact, verdict: Verdict) -> None:
    """Writes the verdict as TFX's InfraValidator does, plus its reason and each check."""
    fileio.makedirs(blessing.uri)
    marker = BLESSED_FILE if verdict.blessed else NOT_BLESSED_FILE
    with fileio.open(os.path.join(blessing.uri, marker), "w") as f:
        f.write("")
    with fileio.open(os.path.join(blessing.uri, DETAILS_FILE), "w") as f:
        f.write(json.dumps(dataclasses.asdict(verdict), indent=2))
    blessing.set_int_custom_property(BLESSED_PROPERTY, int(verdict.blessed))
    blessing.set_string_custom_property(REASON_PROPERTY, verdict.reason)
    blessing.set_float_custom_property(SECONDS_PROPERTY, round(verdict.seconds, 3))
