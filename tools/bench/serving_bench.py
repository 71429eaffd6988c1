"""serving_default through TF Serving's loader against Python's, and what the predict client adds.

A demo-sized model (MobileNetV3Small, random weights, 96x96, real transform graph) is exported
and pushed to a temporary folder. Loaders: ms per request at batch 1 and images/s at batch 32
through TensorFlow's C++ SavedModel loader (TF_LoadSessionFromSavedModel and TF_SessionRun in
the C program of components.serving.c_loader, TF Serving's loader; its figures include the pipe to it)
against the same model in Python's object loader (tf.saved_model.load), calls alternating so
that both see the same load. Client overhead: per request, the client against the loopback REST
and gRPC servers of tests/support/loopback.py (which answer through the C loader) minus the
direct call to the C loader, alternating as well.
"""

import os
import statistics
import sys
import tempfile
import time

import tensorflow as tf
import tensorflow_transform as tft

from components import features
from components.config import TrainerConfig
from components.serving.versions import push_atomically
from components.serving import warmup
from components.trainer import export
from components.trainer import model as model_lib
from components.transform import standalone
from pipeline.serving import client as predict
from tests.support import sample_images
from tests.support.loopback import GrpcLoopbackServer, RestLoopbackServer, SavedModelServable

IMAGE_SIZE = 96
CONFIG = TrainerConfig(base="mobilenet_v3_small", weights="none", image_size=IMAGE_SIZE)
MODEL_NAME = predict.DEFAULT_MODEL
BATCH_SIZES = (1, 32)
SECONDS_PER_MEASURE = 4.0


def push_demo_model(root: str) -> str:
    """The model base path (`<root>/serving_model/cats_vs_dogs`) holding one pushed version."""
    graph_dir, _ = standalone.transform_images(sample_images.mixed_images(), [0, 1, 0, 1, 0], root, IMAGE_SIZE)
    model, _ = model_lib.build_model(CONFIG)
    export_dir = os.path.join(root, "export")
    export.export_serving_model(model, tft.TFTransformOutput(graph_dir), IMAGE_SIZE, export_dir)
    base_path = os.path.join(root, "serving_model", MODEL_NAME)
    push_atomically(export_dir, base_path)
    return base_path


def seconds_per_call(call, budget_s: float = SECONDS_PER_MEASURE) -> float:
    """Median seconds of `call()` over as many calls as fit in the budget, after two warm-up calls."""
    call()
    call()
    timings = []
    deadline = time.perf_counter() + budget_s
    while time.perf_counter() < deadline or len(timings) < 5:
        started = time.perf_counter()
        call()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def paired_seconds(direct_call, client_call, budget_s: float = 2 * SECONDS_PER_MEASURE) -> tuple[float, float, float]:
    """Medians of (direct, client, client - direct) over alternating calls, so both see the same load."""
    direct_call()
    client_call()
    direct, client, differences = [], [], []
    deadline = time.perf_counter() + budget_s
    while time.perf_counter() < deadline or len(differences) < 5:
        started = time.perf_counter()
        direct_call()
        middle = time.perf_counter()
        client_call()
        ended = time.perf_counter()
        direct.append(middle - started)
        client.append(ended - middle)
        differences.append(client[-1] - direct[-1])
    return statistics.median(direct), statistics.median(client), statistics.median(differences)


def print_loaders(servable: SavedModelServable, images: list, root: str) -> None:
    """C loader against Python's loader on the pushed version, alternating calls."""
    version_dir = os.path.join(root, "serving_model", MODEL_NAME, str(servable.version))
    signature = tf.saved_model.load(version_dir).signatures["serving_default"]

    def python_call(size):
        return signature(**{features.SERVING_INPUT_KEY: tf.constant(images[:size])})

    print("\nserving_default: TensorFlow's C++ loader (TF Serving's) against Python's object loader")
    print(f"{'batch':>5} {'C ms/req':>9} {'Py ms/req':>10} {'C img/s':>8} {'Py img/s':>9} {'C / Py time':>12}")
    for size in BATCH_SIZES:
        python_s, c_s, _ = paired_seconds(lambda: python_call(size), lambda: servable.predict(images[:size]))
        print(f"{size:>5} {c_s * 1e3:9.2f} {python_s * 1e3:10.2f} {size / c_s:8.1f} {size / python_s:9.1f} "
              f"{c_s / python_s:11.2f}x")


def main() -> int:
    images = warmup.pattern_jpegs(max(BATCH_SIZES))
    with tempfile.TemporaryDirectory(prefix="serving-bench-") as root:
        started = time.perf_counter()
        servable = SavedModelServable(push_demo_model(root))
        print(f"demo model ({CONFIG.base}, {IMAGE_SIZE}x{IMAGE_SIZE}, random weights) exported, pushed and "
              f"loaded in {time.perf_counter() - started:.1f} s; images {len(images[0])}-{max(map(len, images))} "
              f"byte JPEGs, CPU threads: {os.cpu_count()}")
        print_loaders(servable, images, root)

        print("\nclient against the loopback servers (same process), per request, alternating with direct calls")
        print(f"{'transport':<9} {'batch':>5} {'client ms':>10} {'direct ms':>10} {'overhead ms':>12} {'overhead':>9}")
        with RestLoopbackServer(servable) as rest, GrpcLoopbackServer(servable) as grpc_server:
            clients = {"REST": predict.RestClient(rest.address, MODEL_NAME),
                       "gRPC": predict.GrpcClient(grpc_server.address, MODEL_NAME)}
            for name, client in clients.items():
                for size in BATCH_SIZES:
                    direct_s, client_s, overhead = paired_seconds(lambda: servable.predict(images[:size]),
                                                                  lambda: client.predict(images[:size]))
                    print(f"{name:<9} {size:>5} {client_s * 1e3:10.2f} {direct_s * 1e3:10.2f} "
                          f"{overhead * 1e3:12.2f} {overhead / client_s:9.1%}")
                client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
