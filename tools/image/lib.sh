# shellcheck shell=bash disable=SC2034
# Shared by the scripts in tools/image (sourced, not run): which engine builds and runs the
# image, and the Podman settings this sandbox needs.
IMAGE_TOOLS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$IMAGE_TOOLS/../.." && pwd)
# The Dockerfile's default base (the official image) and the one made offline from Debian 13.
UPSTREAM_BASE=python:3.13-slim-trixie
LOCAL_BASE=${LOCAL_BASE:-localhost/cats-dogs-tfx-base:trixie}
# Where tools/image/podman-service puts its Docker API socket: under the checkout, so that
# tools/in-env's root filesystem (which bind-mounts only the checkout) sees it too.
PODMAN_SOCKET=${PODMAN_SOCKET:-$REPO/outputs/podman/podman.sock}

img_log() { echo "[image] $*" >&2; }
img_die() { echo "[image] error: $*" >&2; exit 1; }

# ENGINE=docker|podman forces one. Otherwise docker where a Docker engine answers, else Podman.
choose_engine() {
  case "${ENGINE:-auto}" in
    docker|podman) echo "$ENGINE"; return ;;
    auto) ;;
    *) img_die "ENGINE must be docker, podman or auto (got '$ENGINE')" ;;
  esac
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    echo docker
  elif command -v podman >/dev/null; then
    echo podman
  else
    img_die "neither a Docker engine (docker info fails) nor Podman is available.
  Install Docker or Podman; on a Debian host, as root, 'make setup' installs Podman."
  fi
}

# What this sandbox needs to run Podman (tools/image/containers.conf says what and why) is
# applied only when it looks like this sandbox: no systemd running (so no systemd cgroup
# manager) and runc installed. A host booted with systemd keeps Podman's own defaults, and
# so does anyone who set CONTAINERS_CONF. PODMAN_SANDBOX=1|0 forces the choice.
use_podman_sandbox_conf() {
  [ -z "${CONTAINERS_CONF:-}" ] || return 0
  case "${PODMAN_SANDBOX:-auto}" in
    1) ;;
    0) return 0 ;;
    *) { [ ! -d /run/systemd/system ] && command -v runc >/dev/null; } || return 0 ;;
  esac
  export CONTAINERS_CONF=$IMAGE_TOOLS/containers.conf
  img_log "Podman settings for a host without systemd: CONTAINERS_CONF=$CONTAINERS_CONF"
}

# Podman names locally built and imported images localhost/NAME; Docker names them NAME.
qualified_name() {
  local engine=$1 name=$2
  if [ "$engine" = podman ] && [[ "$name" != */* ]]; then
    echo "localhost/$name"
  else
    echo "$name"
  fi
}

image_exists() { "$1" image inspect "$2" >/dev/null 2>&1; }
