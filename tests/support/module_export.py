"""The export this project had before: a tf.Module holding the Keras 3 model, saved with
tf.saved_model.save. Python's loader (and so TFMA) runs it; TensorFlow's C++ loader, TF
Serving's, cannot ("Could not find variable ..."). `run_fn` is a Trainer run_fn that exports
it, for runs whose InfraValidator must stop such a model."""

import os

import keras
import tensorflow as tf
import tensorflow_transform as tft

from components import features
from components.config import TrainerConfig
from components.serving import warmup
from components.trainer import export
from components.trainer import model as model_lib
from components.transform import standalone

from . import sample_images
from .serving_model import CONFIG, SIZE, give_distinct_outputs


class ModuleExport(tf.Module):
    def __init__(self, model, transform_output, image_size):
        super().__init__()
        self.model = model
        self.model_variables = list(model.variables)
        self.functions = export.ServingFunctions(model, transform_output.transform_features_layer(),
                                                 transform_output.raw_feature_spec(), image_size)
        self.tft_layer = self.functions._tft_layer  # pylint: disable=protected-access

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=features.SERVING_INPUT_KEY)])
    def serve(self, image_bytes):
        return self.functions.serve_image_bytes(image_bytes)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=features.EXAMPLES_INPUT_KEY)])
    def serve_examples(self, examples):
        return self.functions.serve_examples(examples)


def save(model, transform_output, image_size: int, export_dir: str) -> str:
    module = ModuleExport(model, transform_output, image_size)
    tf.saved_model.save(module, export_dir, signatures={
        features.SERVING_SIGNATURE: module.serve, features.EXAMPLES_SIGNATURE: module.serve_examples})
    warmup.write_warmup_requests(export_dir)
    return export_dir


def small_module_export(root: str) -> str:
    """An untrained tiny model with a real transform graph, exported the former way under `root`."""
    graph_dir, _ = standalone.transform_images(sample_images.mixed_images(), [0, 1, 0, 1, 0], root, SIZE)
    model, base = model_lib.build_model(CONFIG)
    give_distinct_outputs(model, base)
    return save(model, tft.TFTransformOutput(graph_dir), SIZE, os.path.join(root, "export"))


def run_fn(fn_args) -> None:
    """A Trainer run_fn that trains nothing and exports the untrained model the former way."""
    config = TrainerConfig.from_custom_config(fn_args.custom_config)
    keras.utils.set_random_seed(config.seed)
    model, _ = model_lib.build_model(TrainerConfig(base=config.base, weights="none", image_size=config.image_size))
    save(model, tft.TFTransformOutput(fn_args.transform_graph_path or fn_args.transform_output),
         config.image_size, fn_args.serving_model_dir)
