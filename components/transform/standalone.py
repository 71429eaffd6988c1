"""Runs preprocessing_fn through tft_beam on local TFRecords, as TFX's Transform does.

For tests and benchmarks: it writes the same two things the pipeline's Transform
(components.transform) hands the Trainer, the transform graph and transformed
examples in plain TFRecord files.
"""

from __future__ import annotations

import functools
import os
import tempfile
from typing import Iterable, Sequence

import apache_beam as beam
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils
from tfx_bsl.coders import example_coder
from tfx_bsl.public import tfxio

from components import features
from components.example_gen.examples import serialized_example
from components.transform import preprocessing

RAW_FEATURE_SPEC = {
    features.IMAGE_KEY: tf.io.FixedLenFeature([], tf.string),
    features.LABEL_KEY: tf.io.FixedLenFeature([], tf.int64),
    features.FILENAME_KEY: tf.io.FixedLenFeature([], tf.string),
}
TRANSFORM_GRAPH_DIR = "transform_graph"
TRANSFORMED_EXAMPLES_PREFIX = "transformed_examples/transformed_examples"


def write_tfrecord(path: str, records: Iterable[bytes], compression: str = "") -> str:
    with tf.io.TFRecordWriter(path, options=compression or None) as writer:
        for record in records:
            writer.write(record)
    return path


def transform_tfrecords(raw_pattern: str, output_dir: str, image_size: int) -> tuple[str, str]:
    """Analyzes and transforms raw tf.Example TFRecords.

    Returns (transform graph dir, transformed examples file pattern).
    """
    schema = schema_utils.schema_from_feature_spec(RAW_FEATURE_SPEC)
    source = tfxio.TFExampleRecord(file_pattern=raw_pattern, schema=schema)
    graph_dir = os.path.join(output_dir, TRANSFORM_GRAPH_DIR)
    examples_prefix = os.path.join(output_dir, TRANSFORMED_EXAMPLES_PREFIX)
    fn = functools.partial(preprocessing.preprocessing_fn, custom_config={"image_size": image_size})
    with beam.Pipeline() as pipeline, tft_beam.Context(temp_dir=tempfile.mkdtemp(dir=output_dir)):
        raw = pipeline | "Read" >> source.BeamSource()
        (transformed, metadata), transform_fn = (
            raw,
            source.TensorAdapterConfig(),
        ) | "AnalyzeAndTransform" >> tft_beam.AnalyzeAndTransformDataset(fn, output_record_batches=True)
        _ = transform_fn | "WriteTransformFn" >> tft_beam.WriteTransformFn(graph_dir)
        # Arrow record batches and the C++ encoder, as TFX's Transform executor encodes them.
        encoder = example_coder.RecordBatchToExamplesEncoder(metadata.schema)
        _ = (
            transformed
            | "Encode" >> beam.FlatMap(lambda batch_and_passthrough: encoder.encode(batch_and_passthrough[0]))
            | "Write"
            >> beam.io.WriteToTFRecord(examples_prefix, compression_type=beam.io.filesystem.CompressionTypes.UNCOMPRESSED)
        )
    # Like TFX's Transform, keep the raw schema next to the graph for raw_feature_spec().
    raw_metadata_dir = os.path.join(graph_dir, tft.TFTransformOutput.RAW_METADATA_DIR)
    metadata_io.write_metadata(dataset_metadata.DatasetMetadata(schema), raw_metadata_dir)
    return graph_dir, examples_prefix + "*"


def transform_images(images: Sequence[bytes], labels: Sequence[int], output_dir: str, image_size: int) -> tuple[str, str]:
    """Writes the images as raw examples and transforms them; returns what transform_tfrecords does."""
    records = [serialized_example(image, label, f"{i}.img".encode()) for i, (image, label) in enumerate(zip(images, labels))]
    tf.io.gfile.makedirs(output_dir)
    raw_path = write_tfrecord(os.path.join(output_dir, "raw_examples.tfrecord"), records)
    return transform_tfrecords(raw_path, output_dir, image_size)

