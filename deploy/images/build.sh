#!/bin/sh
# `make image`: the server and Lambda images (forkline:server, forkline:lambda) from the Dockerfile, with
# or without a container registry. Each base is pulled when its registry answers; otherwise it is made
# here from Debian's own packages (debootstrap), once per machine: podman keeps it in its storage.
#
#   deploy/images/build.sh [images|bases]     images (default): bases, then both images, then their sizes
#
# Printed on stdout, one per line: `name=value` for each base chosen and each image's size.
# Environment: PODMAN (default podman), DEBIAN_MIRROR (default: the mirror apt uses, else deb.debian.org).
set -eu
cd "$(dirname "$0")/../.."
PODMAN="${PODMAN:-podman}"
# crun fails on these machines' cgroup layout, and podman's default ulimits need CAP_SYS_RESOURCE.
export CONTAINERS_CONF="${CONTAINERS_CONF:-$PWD/deploy/images/containers.conf}"
SUITE=bookworm
PYTHON_OFFICIAL=docker.io/library/python:3.11-slim
LAMBDA_OFFICIAL=public.ecr.aws/lambda/python:3.11
REDIS_OFFICIAL=docker.io/library/redis:7-alpine
PYTHON_DEBIAN=localhost/forkline-base/python:3.11-$SUITE
REDIS_DEBIAN=localhost/forkline-base/redis:7-$SUITE

mirror() {
	if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
	found=$(sed -n 's/^URIs: *\(http[^ ]*debian\)\/*$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
	echo "${found:-http://deb.debian.org/debian}"
}

# present or pulled: a registry that does not answer fails the pull at once (no DNS) or within 60 s.
available() {
	"$PODMAN" image exists "$1" && return 0
	timeout 60 "$PODMAN" pull --quiet "$1" >/dev/null 2>&1
}

# debian_image NAME PACKAGES SETUP [--change ...]: a minimal Debian root with PACKAGES, SETUP run inside it.
debian_image() {
	name=$1 packages=$2 setup=$3
	shift 3
	"$PODMAN" image exists "$name" && return 0
	root=$(mktemp -d /tmp/forkline-base.XXXXXX)
	trap 'rm -rf "$root"' EXIT
	echo "making $name from Debian $SUITE's packages (about a minute, once per machine)" >&2
	debootstrap --variant=minbase --include="$packages" "$SUITE" "$root" "$(mirror)" >/dev/null
	chroot "$root" /bin/sh -c "$setup"
	rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/tmp/*
	tar -C "$root" -c . | "$PODMAN" import --quiet "$@" \
		--change 'LABEL org.opencontainers.image.description="made from Debian packages by deploy/images/build.sh"' \
		- "$name" >/dev/null
	rm -rf "$root"
	trap - EXIT
}

python_base() {
	if available "$PYTHON_OFFICIAL"; then echo "$PYTHON_OFFICIAL"; return; fi
	# A venv at /usr/local gives python:3.11-slim's layout: /usr/local/bin/python and pip, site-packages
	# under /usr/local/lib/python3.11.
	debian_image "$PYTHON_DEBIAN" python3,python3-venv,ca-certificates \
		'python3 -m venv /usr/local && /usr/local/bin/pip --version >/dev/null' \
		--change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--change 'ENV LANG=C.UTF-8' --change 'CMD ["python"]'
	echo "$PYTHON_DEBIAN"
}

redis_base() {
	if available "$REDIS_OFFICIAL"; then echo "$REDIS_OFFICIAL"; return; fi
	# The official image runs redis-server as the user redis in /data, with protected mode off (the
	# other containers reach it over the network with no password); the wrapper does the last part.
	debian_image "$REDIS_DEBIAN" redis-server \
		'mkdir -p /data && chown redis:redis /data && printf "%s\n" "#!/bin/sh" "if [ \"\$1\" = redis-server ]; then exec \"\$@\" --protected-mode no; fi" "exec \"\$@\"" > /usr/local/bin/redis-entrypoint && chmod 755 /usr/local/bin/redis-entrypoint' \
		--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--change 'WORKDIR /data' --change 'USER redis' --change 'EXPOSE 6379' \
		--change 'ENTRYPOINT ["/usr/local/bin/redis-entrypoint"]' --change 'CMD ["redis-server"]'
	echo "$REDIS_DEBIAN"
}

# The build stage reaches the package index through the CA certificates this machine trusts (some
# networks add their own); they reach the build as a secret, never a layer of an image.
build() {
	target=$1 tag=$2
	"$PODMAN" build --quiet --pull=never --format docker --isolation chroot \
		--secret id=ca-certificates,src=/etc/ssl/certs/ca-certificates.crt \
		--build-arg PYTHON_IMAGE="$python" --target "$target" --tag "$tag" . >/dev/null
}

size() { "$PODMAN" image inspect --format '{{.Size}}' "$1" | awk '{printf "%d MB\n", $1 / 1e6}'; }

python=$(python_base)
redis=$(redis_base)
echo "python_base=$python"
echo "redis_base=$redis"
[ "${1:-images}" = bases ] && exit 0

# The Lambda image: on AWS's base (its runtime client built in) when it can be pulled, else on the
# Python base with awslambdaric, the runtime client AWS publishes for other bases.
if available "$LAMBDA_OFFICIAL"; then lambda_target=lambda; else lambda_target=lambda-ric; fi
build server forkline:server
build "$lambda_target" forkline:lambda
echo "lambda_target=$lambda_target"
echo "server_size=$(size forkline:server)"
echo "lambda_size=$(size forkline:lambda)"
