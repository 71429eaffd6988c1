"""The requests the InfraValidator sends: the model's warm-up file, then a canary per signature."""

from __future__ import annotations

import dataclasses
import os
from typing import Mapping, Sequence

import tensorflow as tf

from components import features
from components.serving import tfrecords, warmup


WARMUP_PREFIX = "warm-up request"


class CanaryError(ValueError):
    """No canary request can be made: no examples, or a signature input no canary fills."""


@dataclasses.dataclass
class Call:
    """One call of a signature with 1-D string inputs, by input key."""

    name: str
    signature: str
    inputs: dict[str, list[bytes]]

    @property
    def batch_size(self) -> int:
        return len(next(iter(self.inputs.values()), []))


def warmup_calls(export_dir: str) -> list[Call]:
    """Every request of the model's warm-up file, as TF Serving replays them when it loads a version."""
    if not os.path.exists(warmup.warmup_path(export_dir)):
        return []
    calls = []
    for number, log in enumerate(warmup.read_warmup_requests(export_dir), start=1):
        request = log.predict_log.request
        inputs = {key: [bytes(v) for v in tf.make_ndarray(tensor).reshape(-1)] for key, tensor in request.inputs.items()}
        size = len(next(iter(inputs.values()), []))
        calls.append(Call(f"{WARMUP_PREFIX} {number} ({size} images)",
                          request.model_spec.signature_name or features.SERVING_SIGNATURE, inputs))
    return calls


def canary_calls(signature_inputs: Mapping[str, Sequence[str]], examples: Sequence[bytes]) -> list[Call]:
    """One call per signature (by name: its input keys) with the canary batch: serialized
    tf.Examples where it takes `examples`, their images where it takes `image_bytes`."""
    if not examples:
        raise CanaryError("the canary split has no examples to send")
    images = [image_of(example) for example in examples]
    by_key = {features.EXAMPLES_INPUT_KEY: list(examples), features.SERVING_INPUT_KEY: images}
    calls = []
    for name, keys in sorted(signature_inputs.items()):
        unknown = sorted(set(keys) - set(by_key))
        if unknown:
            raise CanaryError(f"signature {name!r} takes input {unknown[0]!r}, which no canary request fills "
                              f"(known inputs: {', '.join(sorted(by_key))})")
        calls.append(Call(f"canary: {len(examples)} examples to {name}", name, {key: by_key[key] for key in keys}))
    return calls


def read_examples(split_dir: str, count: int) -> list[bytes]:
    """The first `count` serialized tf.Examples of an Examples split folder."""
    files = sorted(tf.io.gfile.glob(os.path.join(split_dir, "*")))
    if not files:
        raise CanaryError(f"no example files in {split_dir}")
    return [record.numpy() for record in tfrecords.dataset(files).take(count)]


def image_of(serialized: bytes) -> bytes:
    example = tf.train.Example.FromString(serialized)
    values = example.features.feature[features.IMAGE_KEY].bytes_list.value
    if not values:
        raise CanaryError(f"a canary example has no {features.IMAGE_KEY!r} feature")
    return bytes(values[0])
