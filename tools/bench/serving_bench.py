"""serving_default throughput in-process, and what the predict client adds per request.

A demo-sized model (MobileNetV3Small, random weights, 96x96, real transform graph) is exported
and pushed to a temporary folder. Throughput: images/s through the loaded signature at batch 1
and 32, on 320x240-class JPEGs. Client overhead: per request, the client against the loopback
REST and gRPC servers of tests/serving_client_test.py (which answer from the same SavedModel,
in this process) minus the direct in-process call, the two alternating so that both see the same load.
"""

import os
import statistics
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path[:0] = [REPO, os.path.join(REPO, "tests")]

import tensorflow as tf  # noqa: E402
import tensorflow_transform as tft  # noqa: E402

import sample_images  # noqa: E402
from components.config import TrainerConfig  # noqa: E402
from components.pusher.executor import push_atomically  # noqa: E402
from components.trainer import export, warmup  # noqa: E402
from components.trainer import model as model_lib  # noqa: E402
from components.transform import standalone  # noqa: E402
from pipeline import predict  # noqa: E402
from serving_client_test import GrpcLoopbackServer, RestLoopbackServer, SavedModelServable  # noqa: E402

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


def main() -> int:
    images = warmup.pattern_jpegs(max(BATCH_SIZES))
    with tempfile.TemporaryDirectory(prefix="serving-bench-") as root:
        started = time.perf_counter()
        servable = SavedModelServable(push_demo_model(root))
        print(f"demo model ({CONFIG.base}, {IMAGE_SIZE}x{IMAGE_SIZE}, random weights) exported, pushed and "
              f"loaded in {time.perf_counter() - started:.1f} s; images {len(images[0])}-{max(map(len, images))} "
              f"byte JPEGs, CPU threads: {os.cpu_count()}")
        direct = {size: seconds_per_call(lambda: servable.predict(images[:size])) for size in BATCH_SIZES}
        print("\nin-process serving_default")
        print(f"{'batch':>5} {'ms/request':>11} {'images/s':>9}")
        for size, seconds in direct.items():
            print(f"{size:>5} {seconds * 1e3:11.2f} {size / seconds:9.1f}")

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
