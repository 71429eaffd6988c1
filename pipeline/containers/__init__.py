"""Container plumbing: the container engine behind the Docker API (engine) and a compiled run's
tasks in containers of the image (image_run)."""
