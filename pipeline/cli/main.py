"""Command line: `python -m pipeline COMMAND ...`; every parser is here, every command in
cli/commands.py, every exit status in cli/exit_status.py."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import Callable, Optional

from pipeline.cli import commands, console, exit_status
from pipeline.config import settings
from pipeline.serving import client


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline",
                                     description="Command line: `python -m pipeline run ...`.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_run_parser(subparsers)
    add_predict_parser(subparsers)
    add_report_parser(subparsers)
    add_compile_kubeflow_parser(subparsers)
    add_run_compiled_parser(subparsers)
    add_check_serving_parser(subparsers)
    add_beam_services_parser(subparsers)
    add_doctor_parser(subparsers)
    return parser


def add_run_parser(subparsers) -> None:
    run = subparsers.add_parser("run", help="run the whole pipeline locally (LocalDagRunner on Beam)")
    add_config_arguments(run)
    run.add_argument("--pipeline-root", help="where artifacts and ML Metadata go (default outputs/<pipeline>)")
    run.add_argument("--serving-dir", help="the Pusher's base folder (default serving_model/)")
    run.add_argument("--archive", help="a local kagglecatsanddogs_5340.zip instead of downloading (full profile)")
    run.add_argument("--summary-json", help="also write the run summary as JSON to this file")
    run.set_defaults(handler=commands.run)


def add_predict_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "predict", help="classify image files with the model TF Serving serves",
        description="Prints `file label probability` per image (probability of dog); exit status 1 "
                    "if any file failed, 2 on a usage error.",
    )
    parser.add_argument("--server", required=True, type=_server_argument, metavar="HOST:PORT",
                        help="TF Serving's REST port (8501 by default) or, with --grpc, its gRPC port (8500)")
    parser.add_argument("--grpc", action="store_true", help="use gRPC instead of REST")
    parser.add_argument("--model", default=client.DEFAULT_MODEL, help=f"model name (default {client.DEFAULT_MODEL})")
    parser.add_argument("--version", type=_positive(int), help="a model version (default: the latest served)")
    parser.add_argument("--json", action="store_true", help="print one JSON list of results instead")
    parser.add_argument("--batch-size", type=_positive(int), default=client.DEFAULT_BATCH_SIZE,
                        help=f"images per request (default {client.DEFAULT_BATCH_SIZE})")
    parser.add_argument("--timeout", type=_positive(float), default=client.DEFAULT_TIMEOUT_S,
                        help=f"seconds to wait for each answer (default {client.DEFAULT_TIMEOUT_S:g})")
    parser.add_argument("--retries", type=_non_negative_int, default=client.DEFAULT_RETRIES,
                        help=f"retries while the server is unavailable (default {client.DEFAULT_RETRIES})")
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, GIF or BMP)")
    parser.set_defaults(handler=commands.predict)


def add_report_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "report", help="write the HTML page of a run (default: the latest)",
        description="Writes <pipeline root>/reports/<run id>/report.html from the run's artifacts and prints its "
                    "path; exit status 2 when the root holds no such run.",
    )
    parser.add_argument("--pipeline-root", metavar="DIR",
                        help="the run's pipeline root (default: the profile's, outputs/<pipeline>)")
    parser.add_argument("--run", dest="run_id", metavar="ID", help="a pipeline run id (default: the latest)")
    parser.add_argument("--profile", help="the profile the run used (default: the one whose pipeline the root holds)")
    parser.set_defaults(handler=commands.report)


def add_compile_kubeflow_parser(subparsers) -> None:
    compile_kubeflow = subparsers.add_parser(
        "compile-kubeflow", help="compile for Kubeflow Pipelines (profile full unless --profile says otherwise)"
    )
    add_config_arguments(compile_kubeflow)
    compile_kubeflow.set_defaults(profile="full", handler=commands.compile_kubeflow)
    compile_kubeflow.add_argument("--output", required=True, help="FILE.yaml (pipeline spec) or FILE.json (PipelineJob)")
    compile_kubeflow.add_argument("--image", default=settings.DEFAULT_IMAGE,
                                  help="the image every task runs (default %(default)s, built from the Dockerfile)")
    compile_kubeflow.add_argument("--gpu-image", metavar="IMAGE", default=None,
                                  help="the Trainer task's image when --set trainer.gpus=N asks for GPUs (required "
                                       f"then): the image with TensorFlow's CUDA libraries, e.g. "
                                       f"{settings.DEFAULT_GPU_IMAGE}, built by `make image-gpu`")
    compile_kubeflow.add_argument("--pipeline-root", help="object storage for artifacts, e.g. gs://BUCKET/pipelines")
    compile_kubeflow.add_argument("--local", action="store_true",
                                  help="compile for run-compiled on this machine: local paths allowed "
                                       "(pipeline root, data, weights, serving folder)")


def add_run_compiled_parser(subparsers) -> None:
    run_compiled = subparsers.add_parser(
        "run-compiled", help="run a compiled pipeline spec locally with Kubeflow Pipelines' kfp.local"
    )
    run_compiled.add_argument("spec", metavar="FILE.yaml", help="a spec written by compile-kubeflow --local")
    run_compiled.add_argument("--param", dest="params", action="append", default=[], metavar="NAME=VALUE",
                              help="a runtime parameter, e.g. phase1_epochs=2 (repeatable)")
    run_compiled.add_argument("--pipeline-root", default=None,
                              help="where kfp.local writes the tasks' artifacts (default outputs/kfp-local)")
    run_compiled.add_argument("--summary-json", help="also write the run summary as JSON to this file")
    run_compiled.add_argument("--in-image", metavar="IMAGE", default=None,
                              help="run every task as a container of IMAGE (e.g. cats-dogs-tfx:0.1.0, built by "
                                   "`make image`) through the Docker API at DOCKER_HOST (Docker, or "
                                   "tools/image/podman-service); default: each task as a subprocess here")
    run_compiled.set_defaults(handler=commands.run_compiled)


def add_check_serving_parser(subparsers) -> None:
    parser = subparsers.add_parser("check-serving", help="run a pushed model through TF Serving's C++ loader")
    parser.add_argument("model_dir", help="a version folder, e.g. serving_model/cats_vs_dogs/<version>")
    parser.set_defaults(handler=commands.check_serving)


def add_beam_services_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "beam-services", help="start a local Beam job service and worker pool for beam_runner=portable",
        description="Starts Beam's job service and an SDK worker pool on this machine, prints the --set "
                    "arguments that run the pipeline's Beam steps on them, and keeps both running until Ctrl-C, "
                    "which stops them and every worker they started. Exit status 0 when stopped, 1 when a "
                    "service failed, 2 on a usage error (a port in use).",
    )
    parser.add_argument("--host", default=settings.BEAM_SERVICES_HOST,
                        help="the address both listen on and give their workers (default %(default)s)")
    parser.add_argument("--job-port", type=_port, default=settings.BEAM_JOB_PORT,
                        help="the job service's port (default %(default)s; 0: any free port)")
    parser.add_argument("--worker-port", type=_port, default=settings.BEAM_WORKER_POOL_PORT,
                        help="the worker pool's port (default %(default)s; 0: any free port)")
    parser.add_argument("--log-dir", metavar="DIR",
                        help="where the services and their workers log (default outputs/beam-services/)")
    parser.set_defaults(handler=commands.beam_services)


def add_doctor_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "doctor", help="say whether this environment can train on a GPU, and if not, why and the fix",
        description="Prints the environment's mode, TensorFlow's version and the CUDA and cuDNN it was built for, "
                    "whether its CUDA libraries load, the NVIDIA driver found (path, version, cuInit) and the GPUs "
                    "TensorFlow sees. Exit status 0 when the profile's Trainer can train on a GPU (trainer.gpus of "
                    "them, at least one), 1 when not, 2 on a usage error.",
    )
    add_config_arguments(parser, beam=False)
    parser.set_defaults(profile="full")
    parser.add_argument("--json", action="store_true", help="print the findings as one JSON object instead")
    parser.set_defaults(handler=commands.doctor)


def add_config_arguments(parser: argparse.ArgumentParser, beam: bool = True) -> None:
    parser.add_argument("--profile", default="demo", help=f"named config: {', '.join(sorted(settings.PROFILES))}")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field, e.g. trainer.phase2_epochs=3 (repeatable)")
    if beam:
        parser.add_argument("--beam-arg", dest="beam_args", action="append", default=[], metavar="ARG",
                            help="extra Beam pipeline argument, passed through unchanged (repeatable)")


def _server_argument(value: str) -> str:
    try:
        client.split_server(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error))
    return value


def _positive(kind: type) -> Callable[[str], float]:
    def parse(value: str):
        number = kind(value)
        if number <= 0:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
        return number

    parse.__name__ = kind.__name__
    return parse


def _port(value: str) -> int:
    if not value.isdigit() or int(value) > 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, got {value}")
    return int(value)


def _non_negative_int(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {value}")
    return number


def main(argv: Optional[list[str]] = None) -> int:
    console.quiet_known_noise()
    args = build_parser().parse_args(argv)
    try:
        status = args.handler(args)
    except settings.ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return exit_status.USAGE
    if status == exit_status.INTERRUPTED:
        exit_now(status)
    return status


def exit_now(status: int) -> None:
    """Exits without waiting for the interrupted component's threads (Beam's, TensorFlow's),
    which could keep the process alive, or print tracebacks, long after Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not print a traceback either
    sys.stdout.flush()
    sys.stderr.flush()
    console.restore_stderr()
    os._exit(status)
