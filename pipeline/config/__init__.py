"""Settings: the typed config and its profiles (settings), what each setting may be (rules),
the runtime tunables (tunables), location helpers (locations) and what Kubeflow pods can
reach (kubeflow)."""
