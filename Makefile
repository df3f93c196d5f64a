# Everything the project needs is installed from here: `make run`, `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# cfn-lint and aws-sam-translator pin an older pydantic: they live in their own venv.
TOOLS := .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed-stamp

.PHONY: install system-packages bench-packages run run-cloud lint test bench clean

# Programs the tests run next to forkline, from Debian's packages, installed only when missing
# (these machines run as root): nginx (the reverse proxy), prometheus (its promtool checks /metrics),
# chromium and chromium-driver (the dashboard's tests drive a real headless browser), redis-server
# and redis-tools (Redis 7 built with TLS, run as master, replica, sentinels and cluster nodes; redis-cli,
# redis-benchmark), openssl (the TLS test's certificates).
system-packages:
	@missing=""; \
	test -x /usr/bin/redis-server || missing="$$missing redis-server"; \
	test -x /usr/bin/redis-cli || missing="$$missing redis-tools"; \
	command -v openssl >/dev/null || missing="$$missing openssl"; \
	test -x /usr/sbin/nginx || missing="$$missing nginx"; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	test -x /usr/bin/chromium || missing="$$missing chromium"; \
	test -x /usr/bin/chromedriver || missing="$$missing chromium-driver"; \
	if [ -n "$$missing" ]; then apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; fi

# wrk for `make bench`, the same way.
bench-packages:
	@command -v wrk >/dev/null || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y wrk; }

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,cloud]'
	@touch $(STAMP)

$(TOOLS_STAMP):
	@test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --upgrade pip
	$(TOOLS)/bin/python -m pip install --quiet 'cfn-lint>=1.20' 'aws-sam-translator>=1.90'
	@touch $(TOOLS_STAMP)

install: $(STAMP)

run: install
	@$(VENV)/bin/forkline run

run-cloud: install
	@$(VENV)/bin/forkline run --cloud

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

test: install $(TOOLS_STAMP) system-packages lint
	$(VENV)/bin/pytest -q

# forkline beside the Node template (../shared/bench/seed-node; forkline alone without node), 3 alternating
# rounds, then the cost of the observability; ~10 minutes. Figures, not tests.
bench: install bench-packages
	@$(PY) bench/compare.py --rounds 3
	@$(PY) bench/overhead.py

clean:
	rm -rf $(VENV) $(TOOLS) .forkline logs .pytest_cache
