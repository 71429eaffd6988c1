"""Loopback stand-ins for TF Serving, for the client's tests and the serving benchmark: its
REST API over HTTP and its gRPC PredictionService, both on 127.0.0.1 only, answering from a
pushed SavedModel through TensorFlow's C++ SavedModel loader (components.serving.c_loader), the
loader TF Serving uses, the way TF Serving does. Each stops by itself after LOOPBACK_LIFETIME_S."""

import base64
import json
import os
import re
import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from components import features
from components.serving import c_loader
from pipeline.serving import client as predict

MODEL = predict.DEFAULT_MODEL
LOOPBACK_LIFETIME_S = 300
# TF Serving's HTTP status for a failed request's TensorFlow status code.
HTTP_STATUS = {"INVALID_ARGUMENT": 400, "NOT_FOUND": 404, "FAILED_PRECONDITION": 400, "UNAVAILABLE": 503}
REST_PATH = re.compile(r"^/v1/models/(?P<model>[^/:]+)(?:/versions/(?P<version>\d+))?:predict$")


class SavedModelServable:
    """What TF Serving loads from a model base path: the highest version's serving_default,
    run by TensorFlow's C++ SavedModel loader (components.serving.c_loader), the loader TF Serving uses."""

    def __init__(self, model_base_path: str, model_name: str = MODEL):
        self.name = model_name
        self.version = max(int(name) for name in os.listdir(model_base_path) if name.isdigit())
        self._model = c_loader.CSavedModel(os.path.join(model_base_path, str(self.version)))
        self.unavailable_answers = 0  # answer UNAVAILABLE to this many requests first
        self.delay_s = 0.0
        self.requests = 0

    def close(self) -> None:
        self._model.close()

    def not_found(self, name: str, version) -> str:
        """TF Serving's NOT_FOUND message, or "" when this servable matches."""
        if name == self.name and version in (None, self.version):
            return ""
        spec = f"Latest({name})" if version is None else f"Specific({name}, {version})"
        return f"Servable not found for request: {spec}"

    def take_unavailable(self) -> bool:
        self.requests += 1
        time.sleep(self.delay_s)
        if self.unavailable_answers:
            self.unavailable_answers -= 1
            return True
        return False

    def predict(self, images) -> dict:
        """Raises c_loader.RequestError (INVALID_ARGUMENT) on undecodable images, as TF Serving's session does."""
        return self._model.run("serving_default", {features.SERVING_INPUT_KEY: [bytes(image) for image in images]})


class _RestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as TF Serving's REST server
    disable_nagle_algorithm = True  # headers and body are two writes: no delayed-ACK stall

    def do_POST(self):
        servable = self.server.servable
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        match = REST_PATH.match(self.path)
        if not match:
            return self._answer(404, {"error": f"Malformed request: POST {self.path}"})
        version = int(match["version"]) if match["version"] else None
        if servable.take_unavailable():
            return self._answer(503, {"error": "Servable is unavailable"})
        if message := servable.not_found(match["model"], version):
            return self._answer(404, {"error": message})
        try:
            images = [base64.b64decode(instance["b64"]) for instance in json.loads(body)["instances"]]
            outputs = servable.predict(images)
        except (ValueError, KeyError, TypeError) as error:
            return self._answer(400, {"error": f"JSON Parse error: {error}"})
        except c_loader.RequestError as error:
            return self._answer(HTTP_STATUS.get(error.code_name, 500), {"error": error.message})
        return self._answer(200, {"predictions": _rows(outputs)})

    def _answer(self, status, document):
        payload = json.dumps(document, indent=4).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


def _rows(outputs) -> list[dict]:
    """TF Serving's row format for several outputs: one object per instance."""
    count = len(outputs[features.PROBABILITY_KEY])
    return [{name: values[i].decode() if values.dtype == object else float(values[i])
             for name, values in outputs.items()} for i in range(count)]


class RestLoopbackServer:
    """TF Serving's REST predict API on 127.0.0.1, answering from a SavedModelServable."""

    def __init__(self, servable: SavedModelServable):
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _RestHandler)
        self._server.daemon_threads = True
        self._server.servable = servable
        self.address = f"127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self._deadline = threading.Timer(LOOPBACK_LIFETIME_S, self._server.shutdown)
        self._deadline.daemon = True
        self._deadline.start()
        return self

    def __exit__(self, *exc):
        self._deadline.cancel()
        self._server.shutdown()
        self._server.server_close()


class _PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, servable: SavedModelServable):
        self.servable = servable

    def Predict(self, request, context):
        servable = self.servable
        version = request.model_spec.version.value if request.model_spec.HasField("version") else None
        if servable.take_unavailable():
            context.abort(grpc.StatusCode.UNAVAILABLE, "Servable is unavailable")
        if message := servable.not_found(request.model_spec.name, version):
            context.abort(grpc.StatusCode.NOT_FOUND, message)
        if features.SERVING_INPUT_KEY not in request.inputs:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"input {features.SERVING_INPUT_KEY} is missing")
        try:
            outputs = servable.predict(tf.make_ndarray(request.inputs[features.SERVING_INPUT_KEY]))
        except c_loader.RequestError as error:
            context.abort(getattr(grpc.StatusCode, error.code_name, grpc.StatusCode.UNKNOWN), error.message)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = servable.name
        response.model_spec.version.value = servable.version
        response.model_spec.signature_name = "serving_default"
        for name, values in outputs.items():
            response.outputs[name].CopyFrom(tf.make_tensor_proto(values))
        return response


class GrpcLoopbackServer:
    """TF Serving's gRPC PredictionService on 127.0.0.1, answering from a SavedModelServable."""

    def __init__(self, servable: SavedModelServable):
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(_PredictionServicer(servable), self._server)
        self.address = f"127.0.0.1:{self._server.add_insecure_port('127.0.0.1:0')}"

    def __enter__(self):
        self._server.start()
        self._deadline = threading.Timer(LOOPBACK_LIFETIME_S, self._server.stop, args=(0,))
        self._deadline.daemon = True
        self._deadline.start()
        return self

    def __exit__(self, *exc):
        self._deadline.cancel()
        self._server.stop(0).wait()
