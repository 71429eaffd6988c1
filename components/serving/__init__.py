"""What serving means to every step, in one place: the served folder (its versions, which one
is loadable, the next version, the baseline), TF Serving's loader (the C program and its
wrapper), the warm-up and canary requests, and reading TFRecords of examples.

The Evaluator, the InfraValidator, the Pusher and `pipeline/serving` use it; no other module
reads or writes the served folder's layout. It imports nothing on import, so that `python -m
components.serving.c_loader` (make setup, the Dockerfile) builds the loader without TensorFlow.
"""
