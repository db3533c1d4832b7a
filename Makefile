# Two commands: `make demo` (set up + run the simulated demo, offline) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CORES  ?= 2
CONFIG ?= config/config.yaml

.PHONY: demo test lint bench clean-demo prefetch

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) --configfile config/config.yaml
	@echo
	@echo "Reports (open in a browser):"
	@ls -1 $(CURDIR)/results/*/report.html

test: $(STAMP)
	$(BIN)/pytest

# Fetch everything a config needs (cohorts, TCGA-CDR, locked resources) on a node with network.
prefetch: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) prefetch --configfile $(CONFIG)

lint: $(STAMP)
	$(BIN)/snakemake --lint

bench: $(STAMP)
	for script in benchmarks/bench_*.py; do $(BIN)/python $$script || exit 1; done

clean-demo:
	rm -rf results .snakemake
