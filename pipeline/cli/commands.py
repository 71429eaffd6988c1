"""What each command of `python -m pipeline` does, from its parsed arguments to its exit status.

Each command imports the modules it runs when it runs (TensorFlow, TFX, kfp.local): the CLI
then starts in a fraction of a second, and `predict` never loads TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from typing import TYPE_CHECKING, Callable, Optional

from components.config import REPO_ROOT, PipelineConfig
from pipeline import steps
from pipeline.cli import exit_status
from pipeline.config import settings

if TYPE_CHECKING:
    from components.run_page.record import RunResult


def load_config(args: argparse.Namespace) -> PipelineConfig:
    config = settings.load_profile(args.profile)
    settings.apply_overrides(config, args.overrides)
    if getattr(args, "pipeline_root", None):
        config.pipeline_root = args.pipeline_root
    if getattr(args, "serving_dir", None):
        config.serving_dir = args.serving_dir
    if getattr(args, "archive", None):
        config.data.archive = args.archive
        config.sample.enabled = False
    return config


def run(args: argparse.Namespace) -> int:
    from pipeline.run_page import config_changes, page
    from pipeline.runners import local

    config = load_config(args)
    changes = config_changes.of_config(config)  # before the run fills in paths of its own
    print(f"[pipeline] profile {config.profile}: {config.pipeline_name}, root {config.resolved_pipeline_root}",
          flush=True)
    try:
        result = local.run(config, args.beam_args)
    except local.Interrupted as interrupted:
        return report_interrupted(interrupted.stage)
    except local.PipelineFailed as failure:
        print(f"[pipeline] FAILED: {failure}", file=sys.stderr)
        return exit_status.FAILED
    result.run_page = write_page(lambda: page.write_run_page(result, config.resolved_pipeline_root, changes))
    return finish(result, args.summary_json)


def run_compiled(args: argparse.Namespace) -> int:
    from pipeline.run_page import page
    from pipeline.runners import compiled

    root = args.pipeline_root or os.path.join(REPO_ROOT, "outputs", "kfp-local")
    try:
        result = compiled.run_compiled(args.spec, args.params, root, in_image=args.in_image)
    except KeyboardInterrupt:
        return report_interrupted("the compiled pipeline's run")
    result.run_page = write_page(lambda: page.write_run_page(result, root))
    return finish(result, args.summary_json)


def compile_kubeflow(args: argparse.Namespace) -> int:
    from pipeline.runners import kubeflow

    path = kubeflow.compile_kubeflow(load_config(args), args.output, args.image, args.beam_args, local=args.local,
                                     gpu_image=args.gpu_image)
    print(f"[pipeline] wrote {path}", flush=True)
    return exit_status.OK


def predict(args: argparse.Namespace) -> int:
    from pipeline.serving import client

    client_class = client.GrpcClient if args.grpc else client.RestClient
    connection = client_class(args.server, args.model, args.version, args.timeout)
    try:
        results = client.predict_files(args.images, connection, args.batch_size, args.retries)
    finally:
        connection.close()
    if args.json:
        print(json.dumps([result.to_json() for result in results], indent=2))
    for result in results:
        if result.error:
            print(result.line(), file=sys.stderr)
        elif not args.json:
            print(result.line())
    return exit_status.SOME_FAILED if any(result.error for result in results) else exit_status.ALL_PREDICTED


def check_serving(args: argparse.Namespace) -> int:
    if not os.path.isfile(os.path.join(args.model_dir, "saved_model.pb")):  # said before TensorFlow loads
        print(f"error: {args.model_dir} has no saved_model.pb; pass a version folder such as "
              "serving_model/cats_vs_dogs/<version>", flush=True)
        return exit_status.USAGE
    from components.serving import c_loader
    from pipeline.serving import check

    print(f"[check-serving] {args.model_dir}: TensorFlow's C++ loader (TF_LoadSessionFromSavedModel, "
          "tag serve) against Python's loader", flush=True)

    def report(outcome: check.Outcome) -> None:
        status = "ok  " if outcome.passed else "FAIL"
        print(f"  {status} {outcome.request.signature}: {outcome.request.name}: {outcome.detail} "
              f"({outcome.seconds:.2f} s)", flush=True)

    try:
        outcomes = check.check(args.model_dir, on_outcome=report)
    except c_loader.CLoaderError as error:
        print(f"[check-serving] FAILED: {error}", flush=True)
        return exit_status.CHECKS_FAILED
    failed = [outcome for outcome in outcomes if not outcome.passed]
    print(f"[check-serving] {len(outcomes) - len(failed)} passed, {len(failed)} failed", flush=True)
    return exit_status.CHECKS_FAILED if failed else exit_status.CHECKS_PASSED


def report(args: argparse.Namespace) -> int:
    from pipeline.results import metadata as results_metadata
    from pipeline.run_page import page

    try:
        root = args.pipeline_root or settings.load_profile(args.profile or "demo").resolved_pipeline_root
        wanted = settings.load_profile(args.profile).pipeline_name if args.profile else None
        name = results_metadata.pipeline_name_in(root, wanted)
        profile = args.profile or settings.profile_of_pipeline(name)
        path = page.write_recorded_run_page(root, name, profile, run_id=args.run_id)
    except (results_metadata.NoRun, settings.ConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return exit_status.USAGE
    print(f"[pipeline] wrote {path}", flush=True)
    return exit_status.PAGE_WRITTEN


def beam_services(args: argparse.Namespace) -> int:
    from pipeline.beam import services as services_lib

    try:
        services = services_lib.start(args.host, args.job_port, args.worker_port,
                                      args.log_dir or os.path.join(REPO_ROOT, "outputs", "beam-services"))
    except services_lib.PortInUse as error:
        print(f"error: {error}", file=sys.stderr)
        return exit_status.USAGE
    except services_lib.BeamServicesError as error:
        print(f"[beam-services] FAILED: {error}", file=sys.stderr)
        return exit_status.FAILED
    except KeyboardInterrupt:
        return exit_status.INTERRUPTED
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    print(f"[beam-services] Beam job service at {services.job_endpoint}, worker pool at {services.worker_pool} "
          f"(logs in {services.log_dir})", flush=True)
    print("[beam-services] run the pipeline's Beam steps on them with:", flush=True)
    print("  " + " ".join(services.settings()), flush=True)
    print("[beam-services] Ctrl-C stops both.", flush=True)
    try:
        stopped = services.wait()
    except KeyboardInterrupt:
        stopped = None
    for signal_number in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not cut the stop short
        signal.signal(signal_number, signal.SIG_IGN)
    services.stop()
    if stopped:
        print(f"[beam-services] FAILED: the {stopped} stopped by itself; both are stopped now (logs in "
              f"{services.log_dir})", file=sys.stderr, flush=True)
        return exit_status.FAILED
    print("[beam-services] stopped the job service, the worker pool and their workers", flush=True)
    return exit_status.SERVICES_STOPPED


def doctor(args: argparse.Namespace) -> int:
    from pipeline.config import rules
    from pipeline.environment import doctor as doctor_lib
    from pipeline.environment import gpu

    config = load_config(args)
    rules.check(config)
    report = gpu.probe(needed=config.trainer.gpus)
    if args.json:
        print(json.dumps(report.to_json(), indent=2, sort_keys=True), flush=True)
    else:
        print(doctor_lib.render(report, config.profile), flush=True)
    return exit_status.GPU_READY if report.usable else exit_status.NO_GPU


def _raise_keyboard_interrupt(*_) -> None:
    raise KeyboardInterrupt


def write_page(write: Callable[[], str]) -> Optional[str]:
    """The run's page; a run whose page cannot be written keeps its outcome and says why."""
    try:
        return write()
    except Exception as error:  # the run's outcome stands without its page
        print(f"[pipeline] warning: no run page: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
        return None


def report_interrupted(stage: str) -> int:
    print(f"[pipeline] interrupted during {stage}; nothing was pushed. Run the same command again to resume: "
          "finished components come from the cache and the Trainer from its last finished epoch.",
          file=sys.stderr, flush=True)
    return exit_status.INTERRUPTED


def finish(result: "RunResult", summary_json: Optional[str]) -> int:
    """Prints the summary (and writes it as JSON); the exit status for what the run did."""
    print(result.render(), flush=True)
    if summary_json:
        with open(summary_json, "w") as out:
            out.write(result.to_json())
    if result.pushed_model_dir or (result.candidate_served and not steps.unfinished(result.components)):
        return exit_status.PUSHED  # pushed now, or this run's model is the one served (a cached rerun)
    unfinished = steps.unfinished(result.components)
    if unfinished:
        print(f"[pipeline] FAILED: {', '.join(unfinished)} did not complete", file=sys.stderr)
        return exit_status.FAILED
    if result.infra_blessed is False:
        print(f"[pipeline] not servable: the candidate failed the InfraValidator, so nothing was pushed: "
              f"{result.infra_reason}", file=sys.stderr)
        return exit_status.NOT_SERVABLE
    return exit_status.NOT_BLESSED if not result.blessed else exit_status.FAILED
