"""The client of `python -m pipeline predict`: classify image files with the model TF Serving serves.

REST: `POST /v1/models/<name>[/versions/<n>]:predict` with `{"instances": [{"b64": ...}, ...]}`,
one instance per image; serving_default has one input (image_bytes), so TF Serving feeds each
instance to it. gRPC: `PredictionService/Predict` with a PredictRequest from
tensorflow-serving-api. Files go in batches; UNAVAILABLE answers and refused connections are
retried with a growing pause; a batch the server rejects is resent one file at a time, so only
the bad file fails.
"""

from __future__ import annotations

import base64
import dataclasses
import http.client
import json
import struct
import time
from typing import Callable, Optional, Sequence

from components import features
from components.config import PipelineConfig

SIGNATURE = features.SERVING_SIGNATURE
DEFAULT_MODEL = PipelineConfig.model_name
DEFAULT_BATCH_SIZE = 8
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_RETRIES = 3
RETRY_PAUSE_S = 0.5


class RequestFailed(Exception):
    """The request got no usable answer; the message says why. Not retried."""


class Rejected(RequestFailed):
    """The server refused the request (HTTP 4xx, INVALID_ARGUMENT, NOT_FOUND...)."""


class Unavailable(RequestFailed):
    """No server answered (connection refused, UNAVAILABLE, HTTP 503): worth retrying."""


@dataclasses.dataclass
class Result:
    file: str
    label: Optional[str] = None
    probability: Optional[float] = None
    logit: Optional[float] = None
    error: Optional[str] = None

    def to_json(self) -> dict:
        return {key: value for key, value in dataclasses.asdict(self).items() if value is not None}

    def line(self) -> str:
        if self.error:
            return f"error: {self.file}: {self.error}"
        return f"{self.file} {self.label} {self.probability:.4f}"


def split_server(server: str) -> tuple[str, int]:
    """'HOST:PORT' (IPv6 as '[::1]:8501') -> (host, port); ValueError when it is not that."""
    host, _, port = server.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT, got {server!r}")
    return host.strip("[]"), int(port)


# REST


def rest_predict_path(model: str, version: Optional[int] = None) -> str:
    versions = f"/versions/{version}" if version is not None else ""
    return f"/v1/models/{model}{versions}:predict"


def rest_request_body(images: Sequence[bytes]) -> bytes:
    instances = [{"b64": base64.b64encode(image).decode("ascii")} for image in images]
    return json.dumps({"instances": instances}).encode()


def parse_rest_response(payload: bytes, count: int) -> list[dict]:
    """TF Serving's answer to `instances` ("predictions", one object per image) -> predictions.

    The columnar form ("outputs", one list per output) is read too.
    """
    try:
        document = json.loads(payload)
        if "predictions" in document:
            rows = document["predictions"]
        else:
            outputs = document["outputs"]
            rows = [{name: values[i] for name, values in outputs.items()} for i in range(count)]
        predictions = [_prediction(row[features.PREDICTED_LABEL_KEY], row[features.PROBABILITY_KEY],
                                   row[features.LOGIT_KEY]) for row in rows]
    except (ValueError, KeyError, TypeError, IndexError) as error:
        raise RequestFailed(f"unexpected answer from the server: {_describe(error)}: {payload[:200]!r}")
    if len(predictions) != count:
        raise RequestFailed(f"the server answered {len(predictions)} predictions for {count} images")
    return predictions


def rest_error(status: int, payload: bytes) -> RequestFailed:
    """TF Serving's error answer (`{"error": "..."}` with an HTTP status) -> the exception to raise."""
    try:
        message = _one_line(json.loads(payload)["error"])
    except (ValueError, KeyError, TypeError, AttributeError):
        message = _one_line(payload.decode("utf-8", "replace")) or http.client.responses.get(status, "")
    reason = f"HTTP {status} {http.client.responses.get(status, '')}".rstrip()
    if status == 503:
        return Unavailable(f"server unavailable ({reason}): {message}")
    if 400 <= status < 500:
        return Rejected(f"rejected by the server ({reason}): {message}")
    return RequestFailed(f"server error ({reason}): {message}")


class RestClient:
    """One keep-alive HTTP connection to TF Serving's REST port."""

    def __init__(self, server: str, model: str, version: Optional[int] = None,
                 timeout_s: float = DEFAULT_TIMEOUT_S):
        self.server = server
        self.host, self.port = split_server(server)
        self.path = rest_predict_path(model, version)
        self.timeout_s = timeout_s
        self._connection: Optional[http.client.HTTPConnection] = None

    def predict(self, images: Sequence[bytes]) -> list[dict]:
        status, payload = self._post(rest_request_body(images))
        if status != 200:
            raise rest_error(status, payload)
        return parse_rest_response(payload, len(images))

    def _post(self, body: bytes) -> tuple[int, bytes]:
        if self._connection is None:
            self._connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
        try:
            self._connection.request("POST", self.path, body, {"Content-Type": "application/json"})
            response = self._connection.getresponse()
            return response.status, response.read()
        except TimeoutError:
            self.close()
            raise RequestFailed(f"no answer from {self.server} within {self.timeout_s:g} s")
        except (ConnectionError, http.client.HTTPException, OSError) as error:
            self.close()
            raise Unavailable(f"cannot reach {self.server}: {_describe(error)}")

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


# gRPC


def grpc_predict_request(images: Sequence[bytes], model: str, version: Optional[int] = None):
    """A PredictRequest for serving_default: image_bytes, a DT_STRING tensor of shape [batch]."""
    from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = SIGNATURE
    if version is not None:
        request.model_spec.version.value = version
    request.inputs[features.SERVING_INPUT_KEY].CopyFrom(tensor_pb2.TensorProto(
        dtype=types_pb2.DT_STRING,
        tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=len(images))]),
        string_val=list(images),
    ))
    return request


def parse_grpc_response(response, count: int) -> list[dict]:
    """A PredictResponse -> one prediction per image."""
    try:
        labels = list(response.outputs[features.PREDICTED_LABEL_KEY].string_val)
        probabilities = _floats(response.outputs[features.PROBABILITY_KEY])
        logits = _floats(response.outputs[features.LOGIT_KEY])
    except KeyError as error:
        raise RequestFailed(f"unexpected answer from the server: no output {error}")
    if not len(labels) == len(probabilities) == len(logits) == count:
        raise RequestFailed(f"the server answered {len(labels)} labels, {len(probabilities)} probabilities "
                            f"and {len(logits)} logits for {count} images")
    return [_prediction(*values) for values in zip(labels, probabilities, logits)]


def grpc_error(code, details: str) -> RequestFailed:
    """A grpc.StatusCode and its details -> the exception to raise."""
    import grpc

    reason = f"{code.name}: {_one_line(details or '')}"
    if code == grpc.StatusCode.UNAVAILABLE:
        return Unavailable(f"server unavailable ({reason})")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return RequestFailed(f"no answer in time ({reason})")
    if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION):
        return Rejected(f"rejected by the server ({reason})")
    return RequestFailed(f"server error ({reason})")


class GrpcClient:
    """A channel to TF Serving's gRPC port; message sizes unlimited, as TF Serving's are."""

    def __init__(self, server: str, model: str, version: Optional[int] = None,
                 timeout_s: float = DEFAULT_TIMEOUT_S):
        import grpc
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        split_server(server)
        self.model, self.version, self.timeout_s = model, version, timeout_s
        self._rpc_error = grpc.RpcError
        self._channel = grpc.insecure_channel(
            server, options=[("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
        )
        self._stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)

    def predict(self, images: Sequence[bytes]) -> list[dict]:
        request = grpc_predict_request(images, self.model, self.version)
        try:
            response = self._stub.Predict(request, timeout=self.timeout_s)
        except self._rpc_error as error:
            raise grpc_error(error.code(), error.details())
        return parse_grpc_response(response, len(images))

    def close(self) -> None:
        self._channel.close()


# Files in, results out


def predict_files(paths: Sequence[str], client, batch_size: int = DEFAULT_BATCH_SIZE,
                  retries: int = DEFAULT_RETRIES, pause_s: float = RETRY_PAUSE_S) -> list[Result]:
    """One Result per path, in order. Once the server stays unavailable, the rest fail at once."""
    results: dict[int, Result] = {}
    readable = []
    for index, path in enumerate(paths):
        try:
            readable.append((index, path, read_image(path)))
        except OSError as error:
            results[index] = Result(path, error=f"cannot read: {error.strerror or error}")
        except ValueError as error:
            results[index] = Result(path, error=str(error))
    unavailable: Optional[Unavailable] = None
    for start in range(0, len(readable), batch_size):
        batch = readable[start:start + batch_size]
        if unavailable is None:
            try:
                batch_results = _predict_batch(client, batch, lambda call: with_retries(call, retries, pause_s))
            except Unavailable as error:
                unavailable = error
        if unavailable is not None:
            batch_results = [Result(path, error=str(unavailable)) for _, path, _ in batch]
        results.update((index, result) for (index, _, _), result in zip(batch, batch_results))
    return [results[index] for index in range(len(paths))]


def read_image(path: str) -> bytes:
    with open(path, "rb") as image_file:
        data = image_file.read()
    if not data:
        raise ValueError("empty file")
    return data


def with_retries(call: Callable, retries: int, pause_s: float, sleep: Callable = time.sleep):
    """`call()`, called again up to `retries` times while it raises Unavailable, pausing longer each time."""
    for attempt in range(retries + 1):
        try:
            return call()
        except Unavailable:
            if attempt == retries:
                raise
            sleep(pause_s * 2 ** attempt)


def _predict_batch(client, batch, retrying: Callable) -> list[Result]:
    try:
        predictions = retrying(lambda: client.predict([image for _, _, image in batch]))
    except Unavailable:
        raise
    except Rejected as error:
        if len(batch) == 1:
            return [Result(batch[0][1], error=str(error))]
        return [result for item in batch for result in _predict_batch(client, [item], retrying)]
    except RequestFailed as error:
        return [Result(path, error=str(error)) for _, path, _ in batch]
    return [Result(path, **prediction) for (_, path, _), prediction in zip(batch, predictions)]


def _prediction(label, probability, logit) -> dict:
    return {"label": _text(label), "probability": _number(probability), "logit": _number(logit)}


def _text(value) -> str:
    """A string output as TF Serving writes it: plain text, b64 object or raw bytes."""
    if isinstance(value, dict):
        return base64.b64decode(value["b64"]).decode()
    return value.decode() if isinstance(value, bytes) else str(value)


def _number(value) -> float:
    """A per-image number: a scalar, or a one-element list for outputs of shape [batch, 1]."""
    if isinstance(value, list):
        (value,) = value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)


def _floats(tensor) -> list[float]:
    """A DT_FLOAT TensorProto's values, from float_val or (little-endian) tensor_content."""
    if tensor.tensor_content:
        return list(struct.unpack(f"<{len(tensor.tensor_content) // 4}f", tensor.tensor_content))
    return list(tensor.float_val)


def _one_line(message: str) -> str:
    """A server's error message on one line, without TensorFlow's `[[{{node ...}}]]` annotations."""
    lines = [line.strip() for line in message.splitlines()]
    return " ".join(line for line in lines if line and not line.startswith("[[")) or message.strip()


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
