"""`python -m pipeline predict`: TF Serving's formats (golden files) and the transport.

TF Serving itself cannot be installed here, so the transport runs against two loopback
stand-ins (tests/support/loopback.py) that answer from the real pushed SavedModel the way TF
Serving does, through TensorFlow's C++ SavedModel loader: an HTTP server for the REST API and
an in-process gRPC PredictionService, both on 127.0.0.1 only.
"""

import base64
import dataclasses
import json
import os
import pathlib
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorflow_serving.apis import predict_pb2

from components import features
from components.serving import warmup
from pipeline.cli import exit_status
from pipeline.cli import main as cli
from pipeline.serving import client as predict
from support import sample_images
from support.loopback import GrpcLoopbackServer, RestLoopbackServer, SavedModelServable

GOLDEN = pathlib.Path(__file__).parent / "golden"
MODEL = predict.DEFAULT_MODEL


# Fixtures


@pytest.fixture(scope="module")
def servable(pushed_model):
    servable = SavedModelServable(os.path.dirname(pushed_model))
    yield servable
    servable.close()


@pytest.fixture
def fresh_servable(servable):
    """The shared servable, with its fault settings and request count reset."""
    servable.unavailable_answers, servable.delay_s, servable.requests = 0, 0.0, 0
    return servable


@pytest.fixture(scope="module")
def rest_server(servable):
    with RestLoopbackServer(servable) as server:
        yield server


@pytest.fixture(scope="module")
def grpc_server(servable):
    with GrpcLoopbackServer(servable) as server:
        yield server


@dataclasses.dataclass
class Endpoint:
    servable: SavedModelServable
    address: str
    args: list  # CLI arguments that pick the transport

    def run(self, capsys, *args):
        """`python -m pipeline predict --server ADDRESS ...` in-process: (exit status, stdout, stderr)."""
        status = cli.main(["predict", "--server", self.address, *self.args, *args])
        captured = capsys.readouterr()
        return status, captured.out, captured.err

    def expected(self, paths) -> dict:
        return self.servable.predict([pathlib.Path(path).read_bytes() for path in paths])


@pytest.fixture(params=["rest", "grpc"])
def endpoint(request, fresh_servable) -> Endpoint:
    if request.param == "rest":
        return Endpoint(fresh_servable, request.getfixturevalue("rest_server").address, [])
    return Endpoint(fresh_servable, request.getfixturevalue("grpc_server").address, ["--grpc"])


@pytest.fixture
def images(tmp_path):
    """Three image files of different formats, as paths."""
    paths = []
    for name, data in [("a.jpg", sample_images.jpeg(seed=1)), ("b.png", sample_images.mixed_images()[2]),
                       ("c.jpg", sample_images.jpeg(seed=2, size=(90, 60)))]:
        (tmp_path / name).write_bytes(data)
        paths.append(str(tmp_path / name))
    return paths


# Formats: TF Serving's documented request and response shapes


def test_rest_request_body_and_path_match_golden():
    tiny = (GOLDEN / "tiny.jpg").read_bytes()

    body = json.loads(predict.rest_request_body([tiny]))

    assert body == json.loads((GOLDEN / "rest_predict_request.json").read_text())
    assert predict.rest_predict_path("cats_vs_dogs") == "/v1/models/cats_vs_dogs:predict"
    assert predict.rest_predict_path("cats_vs_dogs", 3) == "/v1/models/cats_vs_dogs/versions/3:predict"


def test_grpc_request_matches_golden_and_the_warmup_request():
    tiny = (GOLDEN / "tiny.jpg").read_bytes()

    request = predict.grpc_predict_request([tiny], "cats_vs_dogs", 3)

    assert request == text_format.Parse((GOLDEN / "grpc_predict_request.pbtxt").read_text(), predict_pb2.PredictRequest())
    request.model_spec.ClearField("version")
    assert request == warmup.predict_request([tiny], "cats_vs_dogs")


def test_rest_row_response_is_parsed():
    predictions = predict.parse_rest_response((GOLDEN / "rest_predict_response.json").read_bytes(), 2)

    assert predictions == [{"label": "dog", "probability": 0.8, "logit": 1.38629436},
                           {"label": "cat", "probability": 0.1, "logit": -2.19722462}]


@pytest.mark.parametrize("document", [
    {"outputs": {"probability": [0.8], "label": ["dog"], "logit": [1.5]}},
    {"predictions": [{"probability": [0.8], "label": {"b64": base64.b64encode(b"dog").decode()}, "logit": [1.5]}]},
], ids=["columnar", "one-element-lists-and-b64"])
def test_rest_columnar_and_nested_responses_are_parsed(document):
    predictions = predict.parse_rest_response(json.dumps(document).encode(), 1)

    assert predictions == [{"label": "dog", "probability": 0.8, "logit": 1.5}]


@pytest.mark.parametrize("payload, count, message", [
    (b"<html>proxy error</html>", 1, "unexpected answer from the server"),
    (b'{"predictions": [{"probability": 0.5}]}', 1, "unexpected answer from the server"),
    (b'{"predictions": [{"probability": 0.5, "label": "cat", "logit": 0.0}]}', 2, "1 predictions for 2 images"),
])
def test_unusable_rest_responses_fail_with_the_reason(payload, count, message):
    with pytest.raises(predict.RequestFailed, match=message):
        predict.parse_rest_response(payload, count)


@pytest.mark.parametrize("status, golden, error_type, message", [
    (400, "rest_error_invalid_argument.json", predict.Rejected,
     "rejected by the server (HTTP 400 Bad Request): Unknown image file format"),
    (404, "rest_error_not_found.json", predict.Rejected,
     "rejected by the server (HTTP 404 Not Found): Servable not found for request: Specific(cats_vs_dogs, 7)"),
])
def test_rest_error_bodies_become_rejections(status, golden, error_type, message):
    error = predict.rest_error(status, (GOLDEN / golden).read_bytes())

    assert type(error) is error_type
    assert str(error).startswith(message)


def test_rest_unavailable_and_server_errors_are_told_apart():
    assert type(predict.rest_error(503, b'{"error": "busy"}')) is predict.Unavailable
    server_error = predict.rest_error(500, b"Internal Server Error")
    assert type(server_error) is predict.RequestFailed
    assert str(server_error) == "server error (HTTP 500 Internal Server Error): Internal Server Error"


def test_grpc_response_is_parsed_from_float_val_or_tensor_content():
    response = text_format.Parse((GOLDEN / "grpc_predict_response.pbtxt").read_text(), predict_pb2.PredictResponse())
    packed = predict_pb2.PredictResponse()
    packed.CopyFrom(response)
    for name in (features.PROBABILITY_KEY, features.LOGIT_KEY):
        packed.outputs[name].CopyFrom(tf.make_tensor_proto(np.array(response.outputs[name].float_val, np.float32)))

    for answer in (response, packed):
        predictions = predict.parse_grpc_response(answer, 2)
        assert [p["label"] for p in predictions] == ["dog", "cat"]
        np.testing.assert_allclose([p["probability"] for p in predictions], [0.8, 0.1], rtol=1e-6)
        np.testing.assert_allclose([p["logit"] for p in predictions], [1.3862944, -2.1972246], rtol=1e-6)
    assert packed.outputs[features.PROBABILITY_KEY].tensor_content


@pytest.mark.parametrize("code, error_type", [
    (grpc.StatusCode.UNAVAILABLE, predict.Unavailable),
    (grpc.StatusCode.INVALID_ARGUMENT, predict.Rejected),
    (grpc.StatusCode.NOT_FOUND, predict.Rejected),
    (grpc.StatusCode.DEADLINE_EXCEEDED, predict.RequestFailed),
    (grpc.StatusCode.INTERNAL, predict.RequestFailed),
])
def test_grpc_status_codes_map_to_errors(code, error_type):
    error = predict.grpc_error(code, "details")

    assert type(error) is error_type
    assert f"{code.name}: details" in str(error)


# Transport: the client against loopback servers answering from the pushed SavedModel


def test_text_output_gives_file_label_and_probability(endpoint, images, capsys):
    status, out, err = endpoint.run(capsys, "--batch-size", "2", *images)

    assert (status, err) == (exit_status.ALL_PREDICTED, "")
    expected = endpoint.expected(images)
    lines = [line.split(" ") for line in out.splitlines()]
    assert [line[0] for line in lines] == images
    assert [line[1] for line in lines] == [label.decode() for label in expected[features.PREDICTED_LABEL_KEY]]
    np.testing.assert_allclose([float(line[2]) for line in lines], expected[features.PROBABILITY_KEY], atol=1e-4)
    assert endpoint.servable.requests == 2


def test_json_output_and_a_pinned_version(endpoint, images, capsys):
    status, out, _ = endpoint.run(capsys, "--json", "--version", str(endpoint.servable.version), *images)

    assert status == exit_status.ALL_PREDICTED
    results = json.loads(out)
    expected = endpoint.expected(images)
    assert [result["file"] for result in results] == images
    np.testing.assert_allclose([r["probability"] for r in results], expected[features.PROBABILITY_KEY], atol=1e-6)
    np.testing.assert_allclose([r["logit"] for r in results], expected[features.LOGIT_KEY], atol=1e-5)


def test_bad_files_get_one_line_each_and_the_others_are_reported(endpoint, images, tmp_path, capsys):
    garbage = tmp_path / "notes.jpg"
    garbage.write_bytes(b"definitely not an image")
    missing = str(tmp_path / "missing.jpg")
    files = [images[0], str(garbage), missing, images[1], images[2]]

    status, out, err = endpoint.run(capsys, "--batch-size", "4", *files)

    assert status == exit_status.SOME_FAILED == exit_status.FAILED
    assert [line.split(" ")[0] for line in out.splitlines()] == images
    error_lines = err.splitlines()
    assert len(error_lines) == 2
    assert error_lines[0].startswith(f"error: {garbage}: rejected by the server (")
    assert "Unknown image file format" in error_lines[0]
    assert error_lines[1] == f"error: {missing}: cannot read: No such file or directory"


def test_json_output_reports_failures_next_to_predictions(endpoint, images, tmp_path, capsys):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")

    status, out, _ = endpoint.run(capsys, "--json", images[0], str(empty))

    results = json.loads(out)
    assert status == exit_status.SOME_FAILED
    assert set(results[0]) == {"file", "label", "probability", "logit"}
    assert results[1] == {"file": str(empty), "error": "empty file"}


@pytest.mark.parametrize("args, message", [
    (["--model", "cats_vs_dog"], "Servable not found for request: Latest(cats_vs_dog)"),
    (["--version", "7"], f"Servable not found for request: Specific({MODEL}, 7)"),
])
def test_unknown_model_or_version_fails_every_file_with_not_found(endpoint, images, args, message, capsys):
    status, out, err = endpoint.run(capsys, *args, *images[:2])

    assert (status, out) == (exit_status.SOME_FAILED, "")
    assert len(err.splitlines()) == 2 and all(message in line for line in err.splitlines())


def test_unavailable_answers_are_retried(endpoint, images, capsys):
    endpoint.servable.unavailable_answers = 2

    status, out, err = endpoint.run(capsys, images[0])

    assert (status, err) == (exit_status.ALL_PREDICTED, "")
    assert out.startswith(images[0])
    assert endpoint.servable.requests == 3


def test_a_server_that_stays_unavailable_fails_the_rest_without_more_tries(endpoint, images, capsys):
    endpoint.servable.unavailable_answers = 100

    status, out, err = endpoint.run(capsys, "--retries", "1", "--batch-size", "1", *images)

    assert (status, out) == (exit_status.SOME_FAILED, "")
    assert len(err.splitlines()) == 3 and all("server unavailable" in line for line in err.splitlines())
    assert endpoint.servable.requests == 2


def test_slow_answers_time_out(endpoint, images, capsys):
    endpoint.servable.delay_s = 1.0

    status, _, err = endpoint.run(capsys, "--timeout", "0.2", images[0])

    assert status == exit_status.SOME_FAILED
    assert err.startswith(f"error: {images[0]}: no answer")
    assert endpoint.servable.requests == 1


def _closed_loopback_port() -> str:
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as probe:
        return f"127.0.0.1:{probe.server_address[1]}"


@pytest.mark.parametrize("client_class, message", [
    (predict.RestClient, "cannot reach 127.0.0.1:"),
    (predict.GrpcClient, "server unavailable (UNAVAILABLE: "),
], ids=["rest", "grpc"])
def test_refused_connections_are_retried_then_every_file_fails(client_class, message, images):
    client = client_class(_closed_loopback_port(), MODEL, timeout_s=5)
    attempts = []
    predict_once = client.predict
    client.predict = lambda batch: attempts.append(len(batch)) or predict_once(batch)

    results = predict.predict_files(images, client, batch_size=1, retries=2, pause_s=0.01)
    client.close()

    assert attempts == [1, 1, 1]
    assert [result.file for result in results] == images
    assert all(result.label is None and result.error.startswith(message) for result in results)


def test_the_command_runs_as_a_module(rest_server, fresh_servable, images):
    result = subprocess.run([sys.executable, "-m", "pipeline", "predict", "--server", rest_server.address, *images],
                            capture_output=True, text=True, timeout=60)

    assert result.returncode == exit_status.ALL_PREDICTED, result.stderr
    assert [line.split(" ")[0] for line in result.stdout.splitlines()] == images


@pytest.mark.parametrize("args", [
    ["--server", "localhost", "a.jpg"],
    ["--server", "localhost:8501"],
    ["--server", "localhost:8501", "--batch-size", "0", "a.jpg"],
])
def test_bad_arguments_are_usage_errors(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["predict", *args])

    assert exit_info.value.code == exit_status.USAGE
    assert "python -m pipeline predict: error:" in capsys.readouterr().err
