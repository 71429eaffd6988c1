"""TFX's Transform with an executor that writes the transformed examples as plain TFRecords."""

from tfx.components import Transform
from tfx.dsl.components.base import executor_spec

from components.plain_record_transform import executor


class PlainRecordTransform(Transform):
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)
