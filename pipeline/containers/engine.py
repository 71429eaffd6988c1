"""The container engine, through the Docker API that Docker or `podman system service` serves
(DOCKER_HOST; else Docker's socket, else tools/image/podman-service's socket): its client, its
images, and where it sees this process's paths.
"""

from __future__ import annotations

import os
from typing import Any, Optional

from components.config import REPO_ROOT
from pipeline.config.settings import ConfigError

# Where tools/image/podman-service serves Podman's Docker API (tools/image/lib.sh).
PODMAN_SERVICE_SOCKET = os.path.join(REPO_ROOT, "outputs", "podman", "podman.sock")
DEFAULT_DOCKER_SOCKET = "/var/run/docker.sock"
# tools/in-env's root filesystem (tools/env.sh): its marker, and where it lies on the host.
ROOTFS_MARKER = "/etc/cats-dogs-tfx-rootfs"
ROOTFS = os.path.join(REPO_ROOT, ".env", "rootfs")


def docker_client() -> tuple[Any, str]:
    """A client of the Docker API at DOCKER_HOST; unset, Docker's socket, else the one
    tools/image/podman-service serves."""
    try:
        import docker
    except ImportError:
        raise ConfigError("--in-image needs the `docker` Python package (kfp.local's DockerRunner uses it): "
                          "pip install docker") from None
    configured = os.environ.get("DOCKER_HOST")
    candidates = [configured] if configured else [f"unix://{DEFAULT_DOCKER_SOCKET}", f"unix://{PODMAN_SERVICE_SOCKET}"]
    errors = []
    for base_url in candidates:
        if base_url.startswith("unix://") and not os.path.exists(base_url[len("unix://"):]):
            errors.append(f"{base_url}: no socket")
            continue
        client = docker.DockerClient(base_url=base_url, timeout=300)
        try:
            client.ping()
            return client, base_url
        except Exception as error:  # docker's and requests' connection errors alike
            client.close()
            errors.append(f"{base_url}: {error}")
    raise ConfigError(
        "--in-image runs each task through the Docker API, and none answers (" + "; ".join(errors) + "). "
        "Start Docker, or Podman's API service: `tools/image/podman-service start` (then "
        "`eval \"$(tools/image/podman-service env)\"`, or leave DOCKER_HOST unset to use its socket)")


def find_image(client, image: str):
    """The engine's image `image` (Podman names local images localhost/NAME)."""
    import docker

    names = [image] + ([f"localhost/{image}"] if "/" not in image.split(":")[0] else [])
    for name in names:
        try:
            return client.images.get(name)
        except docker.errors.ImageNotFound:
            continue
    raise ConfigError(f"--in-image {image}: the engine has no such image; build it with `make image` "
                      f"(IMAGE={image.removeprefix('localhost/')} to name it so)")


def image_ids(user: str) -> tuple[Optional[int], Optional[int]]:
    """(uid, gid) of an image's numeric USER ("1000:1000", "1000"); (None, None) for root."""
    if not user:
        return None, None
    uid, _, gid = user.partition(":")
    if not uid.isdigit() or (gid and not gid.isdigit()):
        raise ConfigError(f"the image's USER is '{user}': --in-image needs a numeric uid[:gid] to hand "
                          "the folders the tasks write to it")
    return (None, None) if uid == "0" else (int(uid), int(gid or uid))


def engine_path(path: str) -> str:
    """Where the container engine, on the host, sees this process's `path`. Inside tools/in-env's
    root filesystem (a chroot that bind-mounts the checkout at its own path) a path outside the
    checkout lies under the root filesystem's folder on the host."""
    if not os.path.exists(ROOTFS_MARKER):
        return path
    on_host = ROOTFS + path
    if os.path.exists(on_host) and os.path.samefile(on_host, path):
        return on_host
    return path
