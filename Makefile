# listener: two commands on a fresh machine.
#   make demo   set up .venv and run the whole pipeline offline against local sample sources
#   make test   set up .venv and run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test browser postgresql clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned: the CPU build (any other spec pulls gigabytes of CUDA packages)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: setup
	$(BIN)/listener demo
	@echo "listener is installed in .venv: run '. .venv/bin/activate' to have listener and sqlite-utils on your PATH"

# Two workers (pytest-xdist): the suite takes ~2 minutes on 2 cores instead of ~3.
test: setup browser postgresql
	$(BIN)/pytest -q -n 2

# Headless Chromium for the digest's rendering test (Debian's package; the test skips without it).
# As root it is installed system-wide with apt-get, and says so; otherwise nothing is installed.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && echo "make test: installing Debian's chromium system-wide (apt-get, as root) for the browser test" && (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) ; } || echo "make test: chromium not installed (run as root to have it installed): the browser test will be skipped"

# PostgreSQL's server programs for the PostgreSQL half of the tests (Debian's package; the tests start a
# throwaway server in a temporary folder on a loopback port and stop it, and skip without the package).
postgresql:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && echo "make test: installing Debian's postgresql system-wide (apt-get, as root) for the PostgreSQL tests" && (apt-get update -qq && apt-get install -y -qq postgresql >/dev/null) ; } || echo "make test: postgresql not installed (run as root to have it installed): the PostgreSQL tests will be skipped"

clean:
	rm -rf $(VENV)
