# Paths shared by tools/setup and tools/in-env (sourced, not run).
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# CATS_DOGS_ENV_DIR puts an environment elsewhere (the GPU environment's test builds one there).
ENV_DIR=${CATS_DOGS_ENV_DIR:-$REPO/.env}
MODE_FILE=$ENV_DIR/mode
STAMP_FILE=$ENV_DIR/stamp
HOST_VENV=$REPO/.venv
[ -z "${CATS_DOGS_ENV_DIR:-}" ] || HOST_VENV=$ENV_DIR/venv
ROOTFS=$ENV_DIR/rootfs
ROOTFS_VENV=/opt/venv
# Present only inside the Debian 13 root filesystem: tells in-env it is already there.
ROOTFS_MARKER=/etc/cats-dogs-tfx-rootfs
CHROOT_PATH=$ROOTFS_VENV/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# Where tools/in-env mounts the host's NVIDIA driver libraries inside the root filesystem.
HOST_DRIVER_DIR=/usr/lib/host-nvidia-driver
# Which TensorFlow build the environment has: "gpu" (with its CUDA libraries) or "cpu".
GPU_FILE=$ENV_DIR/gpu
