# The two commands a new user runs: `make run` and `make test`.
# Everything they need is installed here, quietly and idempotently.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run check test bench bench-surge system-packages-run system-packages-test clean

run: $(VENV)/.runtime system-packages-run
	@PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m dev.run

# Static checks (configuration and reasons in pyproject.toml): ruff's lint, mypy strict on the
# application, bandit. Any finding stops the run here.
check: $(VENV)/.test
	@$(BIN)/ruff check --quiet ivr workers config dev tests bench && echo "ruff: no findings"
	@$(BIN)/mypy --no-error-summary && echo "mypy: no issues (strict) in ivr/ workers/"
	@$(BIN)/bandit --quiet --configfile pyproject.toml --recursive ivr workers config dev \
		&& echo "bandit: no findings in ivr/ workers/ config/ dev/"

# `make check` first; pytest's summary is the last line.
test: check system-packages-test
	@PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest

bench: $(VENV)/.test system-packages-test
	@PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python bench/webhook_throughput.py
	@PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python bench/transcription.py
	@PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python bench/pipeline_latency.py
	@# A tenth of a TV appeal's surge (60 calls, 20 texts over a minute): ~3 minutes on a quiet 2-core machine.
	@PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python bench/surge.py --scale 0.1

# The whole surge (600 calls, 200 texts over 10 minutes): ~17 minutes on a quiet 2-core machine (10 of arrivals, 6 of draining).
bench-surge: $(VENV)/.test system-packages-test
	@PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python bench/surge.py --scale 1

$(BIN)/python:
	@$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime: requirements.txt pyproject.toml | $(BIN)/python
	@echo "Installing runtime dependencies into $(VENV) ..."
	@set -o pipefail; $(BIN)/pip install --quiet -r requirements.txt 2>&1 | { grep -v 'is ignored: it is neither' || true; }
	@# The `tipline` operator command (ivr/cli.py), from this checkout.
	@set -o pipefail; $(BIN)/pip install --quiet --no-deps -e . 2>&1 | { grep -v 'is ignored: it is neither' || true; }
	@touch $@

$(VENV)/.test: requirements-test.txt $(VENV)/.runtime
	@echo "Installing test dependencies into $(VENV) ..."
	@set -o pipefail; $(BIN)/pip install --quiet -r requirements-test.txt 2>&1 | { grep -v 'is ignored: it is neither' || true; }
	@touch $@

# Debian packages: festival with its HTS voice and flite speak test calls like people
# (espeak-ng speaks Welsh and Polish, and is the benchmark's harder voice); sox makes them
# phone audio; wrk drives the benchmark; nginx fronts the app in tests/test_nginx.py;
# prometheus brings promtool, which checks deploy/alerts.yml. Neither service is ever started or enabled (dev/ensure-system-packages).
system-packages-run:
	@dev/ensure-system-packages festival festvox-us-slt-hts flite espeak-ng sox

system-packages-test:
	@dev/ensure-system-packages festival festvox-us-slt-hts flite espeak-ng sox wrk redis-server chromium prometheus nginx-light

clean:
	rm -rf $(VENV) var
