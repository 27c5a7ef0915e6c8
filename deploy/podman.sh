#!/usr/bin/env bash
# podman as it works on machines like ours (Debian 12, podman 4.3, in a
# sandbox): the runc runtime (crun fails: "cgroups in hybrid mode not
# supported"), cgroupfs, and resource limits no higher than the current
# hard ones (podman's defaults for root, nofile 1048576, are refused).
# Arguments go to podman as they are:
#
#   deploy/podman.sh run --rm --network host localhost/shout:dev serve 127.0.0.1:8080
#   deploy/podman.sh kube play deployment.yaml
#
# (kube play publishes the Deployment's ports on every address of the
# host, and turns its HTTP probes into curl checks the scratch image
# cannot run: to try the image on one machine, prefer run with
# -p 127.0.0.1:8080:8080/tcp -p 127.0.0.1:8080:8080/udp.)
#
# The limits reach `podman kube play` too, through a containers.conf with
# default_ulimits; a CONTAINERS_CONF already set is left alone.
#
# A remote podman (on a Mac or Windows, or with CONTAINER_HOST set) gets
# the arguments alone: it has no --runtime or --cgroup-manager, and runs
# containers on a machine of its own, whose limits are not these; a
# containers.conf of ours would hide the user's, which names that machine.
# A remote chosen on the command line (--remote, --connection, --url) is
# not seen: set CONTAINER_HOST, or call podman itself.
set -euo pipefail

help=$(podman --help 2>/dev/null) || true
if [[ $help != *--cgroup-manager* ]]; then
  exec podman "$@"
fi

if [[ -z "${CONTAINERS_CONF:-}" ]]; then
  hard() { local v; v=$(ulimit -H "$1"); [[ $v == unlimited ]] && v=1048576; echo "$v"; }
  nofile=$(hard -n)
  nproc=$(hard -u)
  ((nproc > 4096)) && nproc=4096
  want=$(printf '[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=%s:%s"]' \
    "$nofile" "$nofile" "$nproc" "$nproc")
  # The file says what podman runs (conmon_path, runtimes, hooks), and
  # TMPDIR is often /tmp, where anyone may put a file, a symlink or a
  # directory under a name they can tell first. So it lives in a
  # directory of our own that no one else can enter: made 0700, or, if
  # one is there already, used only if it is ours and no link (and made
  # 0700 again); otherwise a fresh one.
  dir="${TMPDIR:-/tmp}/shout-podman-$(id -u)"
  if ! mkdir -m 700 -- "$dir" 2>/dev/null; then
    if [[ -L $dir || ! -d $dir || ! -O $dir ]] || ! chmod 700 -- "$dir"; then
      dir=$(mktemp -d)
    fi
  fi
  conf="$dir/containers-$nofile-$nproc.conf"
  # (No one else can have put anything there: the content is all to check.)
  [[ $(cat -- "$conf" 2>/dev/null) == "$want" ]] || printf '%s\n' "$want" >"$conf"
  export CONTAINERS_CONF=$conf
fi

runtime=()
command -v runc >/dev/null && runtime=(--runtime runc)
exec podman "${runtime[@]}" --cgroup-manager=cgroupfs "$@"
