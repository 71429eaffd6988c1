"""The Transform's executor: TFX's, less the gzip on its transformed examples.

The transformed image is raw uint8 pixels (67.5 KB at 150x150): gzip shrinks it by about
6%, and costs more CPU than decoding and resizing the JPEG (measured in tools/bench). TFX's
Transform hard-codes gzipped TFRecords in `TransformProcessor._EncodeAndWrite`, and its
Executor builds the TransformProcessor itself, so this executor hands it a subclass for the
length of its run. Readers tell the files apart by their ".gz" suffix (tfxio, and the
Trainer's components.serving.tfrecords).
"""

from __future__ import annotations

import contextlib
from typing import Any, Dict, Iterable, Iterator, Tuple

import apache_beam as beam
import pyarrow as pa
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx import types
from tfx.components.transform import executor as tfx_transform
from tfx.components.transform import labels
from tfx.components.util import examples_utils
from tfx.proto import example_gen_pb2
from tfx.types import standard_component_specs


class _PlainRecordProcessor(tfx_transform.TransformProcessor):
    @staticmethod
    @beam.ptransform_fn
    @beam.typehints.with_input_types(Tuple[pa.RecordBatch, Dict[str, pa.Array]])
    def _EncodeAndWrite(  # pylint: disable=invalid-name
        pcoll: beam.PCollection, schema: schema_pb2.Schema, file_format: str, output_path: str
    ) -> beam.pvalue.PDone:
        if file_format != labels.FORMAT_TFRECORD:
            return pcoll | "EncodeAndWriteOther" >> tfx_transform.TransformProcessor._EncodeAndWrite(  # pylint: disable=protected-access
                schema=schema, file_format=file_format, output_path=output_path
            )
        return (
            pcoll
            | "EncodeAndSerialize" >> beam.ParDo(tfx_transform.TransformProcessor._RecordBatchToExamplesFn(schema))  # pylint: disable=protected-access
            | "ExtractExamples" >> beam.Values()
            | "WriteToTFRecord" >> beam.io.WriteToTFRecord(
                output_path, compression_type=beam.io.filesystem.CompressionTypes.UNCOMPRESSED
            )
        )


class Executor(tfx_transform.Executor):
    def Do(self, input_dict: Dict[str, Any], output_dict: Dict[str, Any], exec_properties: Dict[str, Any]) -> None:
        with _transform_processor(_PlainRecordProcessor):
            super().Do(input_dict, output_dict, exec_properties)
        mark_payload_format(output_dict.get(standard_component_specs.TRANSFORMED_EXAMPLES_KEY, []))


def mark_payload_format(transformed_examples: Iterable[types.Artifact]) -> None:
    """Records that the transformed examples are tf.Examples, as TFX's ExampleGen does for its own.

    TFX's Transform leaves the property unset, so every reader (the Trainer's tfxio, three
    times a run) warns that it falls back to tf.Example.
    """
    for artifact in transformed_examples:
        examples_utils.set_payload_format(artifact, example_gen_pb2.FORMAT_TF_EXAMPLE)


@contextlib.contextmanager
def _transform_processor(processor: type) -> Iterator[None]:
    original = tfx_transform.TransformProcessor
    tfx_transform.TransformProcessor = processor
    try:
        yield
    finally:
        tfx_transform.TransformProcessor = original
