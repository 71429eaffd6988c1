"""A stub NVIDIA driver (stub_libcuda.c: `cuInit` returns CUDA_ERROR_NO_DEVICE, in words too) and the ways the
tests install it: as a host's driver, seen by the dynamic linker's cache in a private mount
namespace, and as NVIDIA's container toolkit mounts the driver into a container."""

from __future__ import annotations

import os
import shlex
import subprocess

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "stub_libcuda.c")
SONAME = "libcuda.so.1"
# Where the toolkit mounts the driver's libraries in a Debian-family container (its library
# folder, which the container's dynamic linker searches).
CONTAINER_LIBRARY_DIR = "/usr/lib/x86_64-linux-gnu"


def build(directory: str) -> str:
    """Compiles the stub into `directory`/libcuda.so.1 and returns its path."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, SONAME)
    subprocess.run(["cc", "-shared", "-fPIC", "-nostdlib", f"-Wl,-soname,{SONAME}", "-o", path, SOURCE],
                   check=True, capture_output=True, text=True)
    return path


def as_host_driver(stub: str, argv: list[str]) -> list[str]:
    """`argv` run where the stub is the host's driver: in a private mount namespace whose
    /etc/ld.so.cache (rebuilt with `ldconfig -C`) lists the stub's folder, as a driver's
    installer lists its own; nothing outside that namespace changes."""
    folder = os.path.dirname(os.path.abspath(stub))
    conf, cache = f"{folder}.ld.so.conf", f"{folder}.ld.so.cache"  # beside the folder ldconfig scans
    script = " && ".join([
        f"printf '%s\\ninclude /etc/ld.so.conf\\n' {shlex.quote(folder)} > {shlex.quote(conf)}",
        f"ldconfig -C {shlex.quote(cache)} -f {shlex.quote(conf)}",
        f"mount --bind {shlex.quote(cache)} /etc/ld.so.cache",
        f"exec {shlex.join(argv)}",
    ])
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script]


def container_mount(stub: str) -> list[str]:
    """The `docker run`/`podman run` arguments that mount the stub read-only at the driver's
    place in the container, as NVIDIA's container toolkit mounts the host's libcuda.so.1."""
    return ["-v", f"{os.path.abspath(stub)}:{CONTAINER_LIBRARY_DIR}/{SONAME}:ro"]
