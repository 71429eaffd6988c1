"""Command line: `python -m pipeline run ...`.

Exit status of `run`: 0 a model was pushed, 3 the run finished but the model was not blessed
(nothing pushed), 1 the run failed, 2 a usage error (a bad setting, or the pipeline root in use
by another run), 130 interrupted by Ctrl-C (nothing pushed; the same command resumes).
"""

import argparse
import os
import signal
import sys
from typing import Optional

from pipeline import config as config_lib
from pipeline import console
from pipeline import kubeflow_runner
from pipeline import predict
from pipeline import run_page
from pipeline import serving_check

EXIT_PUSHED, EXIT_FAILED, EXIT_USAGE, EXIT_NOT_BLESSED = 0, 1, 2, 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a process Ctrl-C stopped


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the whole pipeline locally (LocalDagRunner on Beam)")
    add_config_arguments(run)
    run.add_argument("--pipeline-root", help="where artifacts and ML Metadata go (default outputs/<pipeline>)")
    run.add_argument("--serving-dir", help="the Pusher's base folder (default serving_model/)")
    run.add_argument("--archive", help="a local kagglecatsanddogs_5340.zip instead of downloading (full profile)")
    run.add_argument("--summary-json", help="also write the run summary as JSON to this file")
    predict.add_parser(commands)
    run_page.add_parser(commands)
    add_compile_kubeflow_parser(commands)
    add_run_compiled_parser(commands)
    serving_check.add_parser(commands)
    return parser


def add_compile_kubeflow_parser(commands) -> None:
    compile_kubeflow = commands.add_parser(
        "compile-kubeflow", help="compile for Kubeflow Pipelines (profile full unless --profile says otherwise)"
    )
    add_config_arguments(compile_kubeflow)
    compile_kubeflow.set_defaults(profile="full")
    compile_kubeflow.add_argument("--output", required=True, help="FILE.yaml (pipeline spec) or FILE.json (PipelineJob)")
    compile_kubeflow.add_argument("--image", default=kubeflow_runner.DEFAULT_IMAGE,
                                  help="the image every task runs (default %(default)s, built from the Dockerfile)")
    compile_kubeflow.add_argument("--pipeline-root", help="object storage for artifacts, e.g. gs://BUCKET/pipelines")
    compile_kubeflow.add_argument("--local", action="store_true",
                                  help="compile for run-compiled on this machine: local paths allowed "
                                       "(pipeline root, data, weights, serving folder)")


def add_run_compiled_parser(commands) -> None:
    run_compiled = commands.add_parser(
        "run-compiled", help="run a compiled pipeline spec locally with Kubeflow Pipelines' kfp.local"
    )
    run_compiled.add_argument("spec", metavar="FILE.yaml", help="a spec written by compile-kubeflow --local")
    run_compiled.add_argument("--param", dest="params", action="append", default=[], metavar="NAME=VALUE",
                              help="a runtime parameter, e.g. phase1_epochs=2 (repeatable)")
    run_compiled.add_argument("--pipeline-root", default=None,
                              help="where kfp.local writes the tasks' artifacts (default outputs/kfp-local)")
    run_compiled.add_argument("--summary-json", help="also write the run summary as JSON to this file")


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="demo", help=f"named config: {', '.join(sorted(config_lib.PROFILES))}")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field, e.g. trainer.phase2_epochs=3 (repeatable)")
    parser.add_argument("--beam-arg", dest="beam_args", action="append", default=[], metavar="ARG",
                        help="extra Beam pipeline argument, passed through unchanged (repeatable)")


def load_config(args: argparse.Namespace) -> config_lib.PipelineConfig:
    config = config_lib.load_profile(args.profile)
    config_lib.apply_overrides(config, args.overrides)
    if getattr(args, "pipeline_root", None):
        config.pipeline_root = args.pipeline_root
    if getattr(args, "serving_dir", None):
        config.serving_dir = args.serving_dir
    if getattr(args, "archive", None):
        config.data.archive = args.archive
        config.sample.enabled = False
    return config


def command_run(args: argparse.Namespace) -> int:
    from pipeline import local_runner

    config = load_config(args)
    changed = run_page.config_changes(config)  # before the run fills in paths of its own
    print(f"[pipeline] profile {config.profile}: {config.pipeline_name}, root {config.resolved_pipeline_root}",
          flush=True)
    try:
        summary = local_runner.run(config, args.beam_args)
    except local_runner.Interrupted as interrupted:
        return report_interrupted(interrupted.stage)
    except local_runner.PipelineFailed as failure:
        print(f"[pipeline] FAILED: {failure}", file=sys.stderr)
        return EXIT_FAILED
    summary.report = write_page(lambda: run_page.write_run_page(
        config.resolved_pipeline_root, config.pipeline_name, summary=summary, profile=config.profile,
        changed_config=changed))
    return finish(summary, args.summary_json)


def write_page(write) -> Optional[str]:
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
    return EXIT_INTERRUPTED


def finish(summary, summary_json: Optional[str]) -> int:
    """Prints the summary (and writes it as JSON); the exit status for what the run did."""
    print(summary.render(), flush=True)
    if summary_json:
        with open(summary_json, "w") as out:
            out.write(summary.to_json())
    if summary.pushed_model_dir:
        return EXIT_PUSHED
    failed = [name for name, info in summary.components.items() if info["status"] in ("failed", "not run")]
    if failed:
        print(f"[pipeline] FAILED: {', '.join(failed)} did not complete", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_NOT_BLESSED if not summary.blessed else EXIT_FAILED


def command_run_compiled(args: argparse.Namespace) -> int:
    from pipeline import compiled_runner

    root = args.pipeline_root or os.path.join(config_lib.REPO_ROOT, "outputs", "kfp-local")
    try:
        summary, task_outputs, parameters = compiled_runner.run_compiled(args.spec, args.params, root)
    except KeyboardInterrupt:
        return report_interrupted("the compiled pipeline's run")
    summary.report = write_page(lambda: run_page.write_compiled_run_page(root, task_outputs, summary,
                                                                         parameters=parameters))
    return finish(summary, args.summary_json)


def command_compile_kubeflow(args: argparse.Namespace) -> int:
    path = kubeflow_runner.compile_kubeflow(load_config(args), args.output, args.image, args.beam_args, local=args.local)
    print(f"[pipeline] wrote {path}", flush=True)
    return 0


COMMANDS = {
    "run": command_run,
    "predict": predict.command_predict,
    "compile-kubeflow": command_compile_kubeflow,
    "run-compiled": command_run_compiled,
    "check-serving": serving_check.command_check_serving,
    "report": run_page.command_report,
}


def main(argv: Optional[list[str]] = None) -> int:
    console.quiet_known_noise()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status = COMMANDS[args.command](args)
    except config_lib.ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    if status == EXIT_INTERRUPTED:
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
