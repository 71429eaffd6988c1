"""Every exit status of `python -m pipeline`, by command.

run, run-compiled: 0 a model was pushed (or, on a rerun taken from the cache, this run's model
is the one served), 3 the run finished but the model was not blessed (nothing pushed), 4 the
run finished but the model failed the InfraValidator: it does not load or answer in TF
Serving's loader (nothing pushed), 1 the run failed, 2 a usage error (a bad setting, a Beam
service of beam_runner=portable that does not answer, or the pipeline root in use by another
run), 130 interrupted by Ctrl-C (nothing pushed; the same
command resumes).
compile-kubeflow: 0 written, 2 a usage error.
predict: 0 every file predicted, 1 any file failed, 2 a usage error.
check-serving: 0 every check passed, 1 any failed, 2 a usage error.
report: 0 the page was written, 2 no such run (or a usage error).
doctor: 0 the profile's Trainer can train on a GPU, 1 it cannot (the reason and fix printed), 2 a
usage error.
beam-services: 0 stopped (Ctrl-C or SIGTERM), 1 a service failed to start or stopped by itself,
2 a usage error (a port in use).
"""

OK = 0
PUSHED = 0
FAILED = 1
USAGE = 2
NOT_BLESSED = 3
NOT_SERVABLE = 4
INTERRUPTED = 130  # 128 + SIGINT, as shells report a process Ctrl-C stopped

ALL_PREDICTED, SOME_FAILED = 0, 1
CHECKS_PASSED, CHECKS_FAILED = 0, 1
PAGE_WRITTEN = 0
SERVICES_STOPPED = 0
GPU_READY, NO_GPU = 0, 1
