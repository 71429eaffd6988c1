"""Transform's executor on a few sample images: TFX's Transform, plain TFRecords out."""

import os

import pytest
import tensorflow as tf
import tensorflow_transform as tft
from tensorflow_transform.tf_metadata import schema_utils
from tfx import types
from tfx.components.transform import executor as tfx_transform
from tfx.dsl.components.base.base_beam_executor import BaseBeamExecutor
from tfx.proto import example_gen_pb2, transform_pb2
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs as keys
from tfx.utils import io_utils, proto_utils

from components import features
from components.example_gen.examples import serialized_example
from components.serving import tfrecords
from components.transform import preprocessing, standalone
from components.transform import executor as executor_lib
from components.transform.component import Transform
from pipeline.beam import arguments as beam_arguments
from pipeline.config.settings import demo_profile
from support import sample_images

SIZE = 24
SPLIT_IMAGES = {"train": 6, "eval": 4}


@pytest.fixture(scope="module")
def transformed(tmp_path_factory):
    root = tmp_path_factory.mktemp("transform")
    images = sample_images.mixed_images()
    examples = standard_artifacts.Examples()
    examples.uri = str(root / "examples")
    examples.split_names = artifact_utils.encode_split_names(list(SPLIT_IMAGES))
    for split, count in SPLIT_IMAGES.items():
        split_dir = artifact_utils.get_split_uri([examples], split)
        os.makedirs(split_dir)
        records = [serialized_example(images[i % len(images)], i % 2, f"{split}{i}.jpg".encode()) for i in range(count)]
        standalone.write_tfrecord(os.path.join(split_dir, "data_tfrecord-00000-of-00001"), records)
    schema = standard_artifacts.Schema()
    schema.uri = str(root / "schema")
    io_utils.write_pbtxt_file(os.path.join(schema.uri, "schema.pbtxt"), schema_utils.schema_from_feature_spec(standalone.RAW_FEATURE_SPEC))
    graph, output = standard_artifacts.TransformGraph(), standard_artifacts.Examples()
    graph.uri, output.uri = str(root / "graph"), str(root / "transformed")
    exec_properties = {
        key: proto_utils.proto_to_json(value) if hasattr(value, "DESCRIPTOR") else value
        for key, value in Transform(
            examples=types.Channel(type=standard_artifacts.Examples),
            schema=types.Channel(type=standard_artifacts.Schema),
            preprocessing_fn="components.transform.preprocessing.preprocessing_fn",
            custom_config={"image_size": SIZE},
            splits_config=transform_pb2.SplitsConfig(analyze=["train"], transform=["train", "eval"]),
            disable_statistics=True,
        ).exec_properties.items()
        if value is not None
    }
    context = BaseBeamExecutor.Context(beam_pipeline_args=beam_arguments.beam_args(demo_profile()), tmp_dir=str(root / "tmp"))
    executor_lib.Executor(context).Do(
        {keys.EXAMPLES_KEY: [examples], keys.SCHEMA_KEY: [schema]},
        {keys.TRANSFORM_GRAPH_KEY: [graph], keys.TRANSFORMED_EXAMPLES_KEY: [output]},
        exec_properties,
    )
    return graph, output


def test_transformed_examples_are_plain_tfrecords(transformed):
    _, output = transformed
    for split, count in SPLIT_IMAGES.items():
        split_dir = artifact_utils.get_split_uri([output], split)
        names = os.listdir(split_dir)
        assert names and not any(name.endswith(".gz") for name in names)
        assert all(open(os.path.join(split_dir, name), "rb").read(2) != b"\x1f\x8b" for name in names)
        records = list(tfrecords.dataset([os.path.join(split_dir, name) for name in names]))
        assert len(records) == count


def test_transformed_images_match_the_preprocessing(transformed):
    graph, output = transformed
    transform_output = tft.TFTransformOutput(graph.uri)
    split_dir = artifact_utils.get_split_uri([output], "train")
    records = [r.numpy() for r in tfrecords.dataset([os.path.join(split_dir, n) for n in os.listdir(split_dir)])]
    parsed = tf.io.parse_example(records, transform_output.transformed_feature_spec())
    pixels = preprocessing.decode_transformed_images(parsed[features.TRANSFORMED_IMAGE_KEY], SIZE)
    assert pixels.shape == (SPLIT_IMAGES["train"], SIZE, SIZE, 3)
    assert sorted(parsed[features.TRANSFORMED_LABEL_KEY].numpy().tolist()) == [0, 0, 0, 1, 1, 1]
    assert 0 <= float(tf.reduce_min(pixels)) and float(tf.reduce_max(pixels)) <= 255


def test_tfx_transform_processor_is_restored(transformed):
    assert tfx_transform.TransformProcessor is not executor_lib._PlainRecordProcessor  # pylint: disable=protected-access
    assert tfx_transform.TransformProcessor.__module__ == tfx_transform.__name__


def test_transformed_examples_say_they_are_tf_examples(transformed, caplog):
    """Without the property, every reader warns that it falls back to tf.Example."""
    from tfx.components.util import examples_utils

    _, output = transformed

    assert examples_utils.get_payload_format(output) == example_gen_pb2.FORMAT_TF_EXAMPLE
    assert "payload_format" not in caplog.text
