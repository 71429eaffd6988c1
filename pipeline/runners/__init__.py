"""Ways to run the pipeline: local (LocalDagRunner), kubeflow (compile), compiled (kfp.local),
and what they share: inputs, preflight, failures, lock, progress."""
