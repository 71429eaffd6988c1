# Paths shared by tools/setup and tools/in-env (sourced, not run).
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ENV_DIR=$REPO/.env
MODE_FILE=$ENV_DIR/mode
STAMP_FILE=$ENV_DIR/stamp
HOST_VENV=$REPO/.venv
ROOTFS=$ENV_DIR/rootfs
ROOTFS_VENV=/opt/venv
# Present only inside the Debian 13 root filesystem: tells in-env it is already there.
ROOTFS_MARKER=/etc/cats-dogs-tfx-rootfs
CHROOT_PATH=$ROOTFS_VENV/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
