#!/usr/bin/env bash
# Build a Dockerfile with podman: no Docker engine, no image registry; only Debian's archive and PyPI.
# Used by tests/container/test_image.py when no Docker engine is reachable (docs/DOCKER.md).
# Every "FROM python:<tag>" / "FROM debian:<tag>" is satisfied by a local stand-in image made with
# mmdebstrap from the host's Debian mirror (Debian 12: Python 3.11, pip 23.0.1, no EXTERNALLY-MANAGED).
# Usage (as root): tests/container/podman_build.sh <context-dir> [Dockerfile]     env: IMAGE (default localhost/project:ci),
#   PODMAN_WORK (default /tmp/podman-ci), PODMAN_DRIVER (overlay|vfs, default overlay)
# Afterwards use the same store with:  . "$PODMAN_WORK/env.sh"; podman run ...
set -euo pipefail
CTX=${1:?context dir}; DF=${2:-$CTX/Dockerfile}; IMAGE=${IMAGE:-localhost/project:ci}
W=${PODMAN_WORK:-/tmp/podman-ci}; mkdir -p "$W"/{root,run,tmp,net,vartmp,ctx}
T0=$(date +%s); step(){ echo "[$(( $(date +%s) - T0 ))s] $*"; }
if ! command -v podman >/dev/null || ! command -v runc >/dev/null || ! command -v mmdebstrap >/dev/null; then
  step "apt-get install podman runc mmdebstrap"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc mmdebstrap >/dev/null
fi
# For CI VMs and containers: no CAP_SYS_RESOURCE (podman's default rlimits fail), a cgroup v1/v2 hybrid
# (crun refuses), no systemd.
# netns=host: containers share the host's loopback (no bridge, no 10.88.x addresses, no iptables rules).
cat > "$W/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
netns = "host"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$W/tmp"
[network]
network_config_dir = "$W/net"
CONF
printf '[storage]\ndriver = "%s"\ngraphroot = "%s/root"\nrunroot = "%s/run"\n' "${PODMAN_DRIVER:-overlay}" "$W" "$W" > "$W/storage.conf"
printf 'export CONTAINERS_CONF=%s/containers.conf CONTAINERS_STORAGE_CONF=%s/storage.conf TMPDIR=%s/vartmp\n' "$W" "$W" "$W" > "$W/env.sh"
. "$W/env.sh"
MIRROR=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
[ -n "$MIRROR" ] || MIRROR=$(awk '$1=="deb"{print $2; exit}' /etc/apt/sources.list 2>/dev/null)
[ -n "$MIRROR" ] || { echo "no Debian mirror found in apt sources" >&2; exit 2; }

mkimage(){ # $1 = image name, $2 = extra packages (comma list, may be empty)
  podman image exists "$1" && return 0
  step "mmdebstrap -> $1"
  local inc=(); [ -n "$2" ] && inc=(--include="$2")
  mmdebstrap --quiet --variant=apt "${inc[@]}" \
    --customize-hook='mkdir -p "$1/usr/local/share/ca-certificates"; cp /usr/local/share/ca-certificates/*.crt "$1/usr/local/share/ca-certificates/" 2>/dev/null || true; cp /etc/ssl/certs/ca-certificates.crt "$1/etc/ssl/certs/" 2>/dev/null || { mkdir -p "$1/etc/ssl/certs"; cp /etc/ssl/certs/ca-certificates.crt "$1/etc/ssl/certs/"; }' \
    --customize-hook='printf "[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n" > "$1/etc/pip.conf"; rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED; if [ -x "$1/usr/bin/python3" ]; then ln -sf /usr/bin/python3 "$1/usr/local/bin/python"; ln -sf /usr/bin/pip3 "$1/usr/local/bin/pip"; fi; rm -rf "$1"/var/lib/apt/lists/*' \
    bookworm - "$MIRROR" | podman import -q --change 'ENV LANG=C.UTF-8' - "$1" >/dev/null
}
STAGES=" $(awk 'toupper($1)=="FROM" && toupper($(NF-1))=="AS"{print $NF}' "$DF" | tr '\n' ' ') "
for ref in $(awk 'toupper($1)=="FROM"{for(i=2;i<=NF;i++) if($i !~ /^--/){print $i; break}}' "$DF" | sort -u); do
  case "$STAGES" in *" $ref "*) continue;; esac
  short=${ref#docker.io/}; short=${short#library/}; full=docker.io/library/$short
  case "$short" in
    localhost/*|scratch) continue;;
    python:*) mkimage localhost/python-standin:3.11 python3,python3-pip,python3-venv,ca-certificates
              podman tag localhost/python-standin:3.11 "$full";;
    debian:*) mkimage localhost/debian-standin:bookworm ""
              podman tag localhost/debian-standin:bookworm "$full";;
    *) echo "no stand-in for FROM $ref (ARG-templated FROM lines are not resolved either)" >&2; exit 2;;
  esac
done
step "podman build $DF"
# --format docker keeps HEALTHCHECK (the default OCI format drops it with a warning)
podman build --pull=never --format docker --isolation chroot --network host -f "$DF" -t "$IMAGE" "$CTX"
step "built $IMAGE"
