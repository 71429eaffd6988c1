"""What a run did: one record (record.RunResult), read from ML Metadata (metadata) or from a
compiled run's task outputs (task_outputs), and TFMA's outputs (evaluation)."""
