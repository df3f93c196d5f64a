# Everything the project needs is installed from here: `make run`, `make test`.
# Every Python dependency comes from a lock with hashes; nothing resolves a version at install time.
# `make lock` upgrades the locks on purpose (then `make test` says whether the new set works).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# uv itself, from locks/bootstrap.txt (exported from uv.lock, pinned with hashes), in a venv of its own.
UV_VENV := .venv-uv
UV := $(UV_VENV)/bin/uv
# cfn-lint and aws-sam-translator pin an older pydantic: they live in their own venv, from their own lock.
TOOLS := .venv-tools
TOOLS_LOCK := locks/template-tools
TOOLS_STAMP := $(TOOLS)/.installed-stamp
export UV_PYTHON := $(PYTHON)
# uv must not look for a newer Python or uv of its own: the machine's Python, the locked uv.
export UV_PYTHON_DOWNLOADS := never
export UV_NO_PROGRESS := 1

.PHONY: install lock system-packages image-packages bench-packages run run-cloud lint test docs image grafana bench clean

# Programs the tests run next to forkline, from Debian's packages, installed only when missing
# (these machines run as root): nginx (the reverse proxy), prometheus (its promtool checks /metrics),
# chromium and chromium-driver (the dashboard's tests drive a real headless browser), redis-server
# and redis-tools (Redis 7 built with TLS, run as master, replica, sentinels and cluster nodes; redis-cli,
# redis-benchmark), openssl (the TLS test's certificates), kubernetes-client (kubectl kustomize renders
# deploy/kubernetes), and what builds and runs the images.
system-packages: image-packages
	@missing=""; \
	test -x /usr/bin/redis-server || missing="$$missing redis-server"; \
	test -x /usr/bin/redis-cli || missing="$$missing redis-tools"; \
	command -v openssl >/dev/null || missing="$$missing openssl"; \
	test -x /usr/sbin/nginx || missing="$$missing nginx"; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	test -x /usr/bin/chromium || missing="$$missing chromium"; \
	test -x /usr/bin/chromedriver || missing="$$missing chromium-driver"; \
	command -v kubectl >/dev/null || missing="$$missing kubernetes-client"; \
	if [ -n "$$missing" ]; then apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; fi

# podman with buildah (builds), runc (runs: crun fails on these machines) and debootstrap (bases made from
# Debian's packages when no registry answers), the same way: `make image` and the image tests.
image-packages:
	@missing=""; \
	command -v podman >/dev/null || missing="$$missing podman"; \
	command -v buildah >/dev/null || missing="$$missing buildah"; \
	command -v runc >/dev/null || missing="$$missing runc"; \
	command -v debootstrap >/dev/null || missing="$$missing debootstrap"; \
	if [ -n "$$missing" ]; then apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; fi

# wrk for `make bench`, the same way.
bench-packages:
	@command -v wrk >/dev/null || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y wrk; }

$(UV): locks/bootstrap.txt
	@test -x $(UV_VENV)/bin/python || $(PYTHON) -m venv $(UV_VENV)
	$(UV_VENV)/bin/python -m pip install --quiet --require-hashes --no-deps -r locks/bootstrap.txt
	@touch $(UV)

# --frozen: install exactly uv.lock, and fail rather than resolve anything it does not name.
$(STAMP): pyproject.toml uv.lock $(UV)
	UV_PROJECT_ENVIRONMENT=$(CURDIR)/$(VENV) $(UV) sync --quiet --frozen --extra test --extra cloud
	@touch $(STAMP)

$(TOOLS_STAMP): $(TOOLS_LOCK)/pyproject.toml $(TOOLS_LOCK)/uv.lock $(UV)
	UV_PROJECT_ENVIRONMENT=$(CURDIR)/$(TOOLS) $(UV) sync --quiet --frozen --project $(TOOLS_LOCK)
	@touch $(TOOLS_STAMP)

# The newest versions pyproject.toml (and the tools' pyproject.toml) allow, uv itself included.
lock: $(UV)
	$(UV) lock --upgrade
	$(UV) lock --upgrade --project $(TOOLS_LOCK)
	$(UV) export --quiet --frozen --only-group bootstrap --no-emit-project -o locks/bootstrap.txt

install: $(STAMP)

run: install
	@$(VENV)/bin/forkline run

run-cloud: install
	@$(VENV)/bin/forkline run --cloud

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# The suite includes the docs: tests/test_docs.py builds the site with `mkdocs build --strict`.
test: install $(TOOLS_STAMP) system-packages lint
	$(VENV)/bin/pytest -q --durations=15

# forkline:server and forkline:lambda with podman, from the lock; bases pulled, or made from Debian's packages
# when no registry answers (deploy/images/build.sh; docs/deploying.md). Prints the bases chosen and the sizes.
image: image-packages
	@sh deploy/images/build.sh

# deploy/grafana/forkline.json from deploy/grafana/dashboard.py (Grafana's SDK, from the lock); a test fails when stale.
grafana: install
	$(PY) deploy/grafana/dashboard.py

# The manual (docs/, mkdocs.yml) into site/.
docs: install
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

# forkline beside the Node template (../shared/bench/seed-node; forkline alone without node), 3 alternating
# rounds, then the cost of the observability, tracing off (the default) and on; ~10 minutes. Figures, not tests.
bench: install bench-packages
	@$(PY) bench/compare.py --rounds 3
	@$(PY) bench/overhead.py
	@$(PY) bench/overhead.py --tracing

clean:
	rm -rf $(VENV) $(TOOLS) $(UV_VENV) .forkline logs .pytest_cache site
