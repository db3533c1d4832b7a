# Two commands: `make demo` (set up + run the simulated demo, offline) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CORES  ?= 2
CONFIG ?= config/config.yaml
# MEM_MB=N: the jobs run side by side only while their memory requests (estimated from each job's input,
# ferrostem.job_memory) fit in N MB together; snakemake itself takes ~0.25 GB on top. By default N is the memory
# the machine has available when make starts (MemAvailable in /proc/meminfo) less 0.5 GB, at least 1,000: a run
# never starts more than the machine can hold, and a job asking for more than N runs alone. `MEM_MB=` sets no
# limit, as does a system without /proc/meminfo (macOS).
ifeq ($(origin MEM_MB),undefined)
MEM_MB := $(shell awk '/^MemAvailable:/ { mb = int($$2 / 1024) - 512; print (mb > 1000 ? mb : 1000) }' /proc/meminfo 2>/dev/null)
endif
RESOURCES = $(if $(MEM_MB),--resources mem_mb=$(MEM_MB))

# Snakemake reads --configfile before the workflow starts (a missing file is a traceback, a YAML error names
# no line): every target that takes a config checks it first, naming the file, line and column.
CHECK_CONFIG = $(BIN)/python -m ferrostem.config --schema workflow/schemas/config.schema.yaml --catalogue resources/signatures

.PHONY: demo run test lint bench clean-demo prefetch check-config

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e ".[test,lint]"
	# the library's bytecode, which every job process reads instead of compiling the sources again: where
	# PYTHONDONTWRITEBYTECODE is set (many container images) Python would never write it
	$(BIN)/python -m compileall -q src
	# numba's machine code for the one JIT function a job reaches (scanpy's rankdata, in the subtypes job):
	# compiled on first use otherwise, 7 s of CPU in each cohort's job of the first run
	$(BIN)/python -W ignore -c "from ferrostem.subtype_report import compile_marker_ranking as c; c()"
	touch $(STAMP)

demo: $(STAMP)
	@$(CHECK_CONFIG) config/config.yaml
	$(BIN)/snakemake --cores $(CORES) $(RESOURCES) --configfile config/config.yaml
	@echo
	@echo "Reports (open in a browser):"
	@ls -1 $(CURDIR)/results/*/report.html

# The suite in parallel (pytest-xdist): one worker per core; tests are grouped so that each expensive fixture
# (the demo run, the SLURM cluster, the replica and pan-cancer runs) is computed once (tests/conftest.py);
# the long modules start first.
TEST_WORKERS ?= $(CORES)
test: $(STAMP)
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder --durations=25

# Run the workflow on a config: make run CONFIG=config/cohorts/tcga-lihc.yaml [MEM_MB=8000]
run: $(STAMP)
	@$(CHECK_CONFIG) $(CONFIG)
	$(BIN)/snakemake --cores $(CORES) $(RESOURCES) --configfile $(CONFIG)

# Check a config (file, YAML syntax, schema and cross-key rules) without running anything.
check-config: $(STAMP)
	@$(CHECK_CONFIG) $(CONFIG)

# Fetch everything a config needs (cohorts, TCGA-CDR, locked resources) on a node with network.
prefetch: $(STAMP)
	@$(CHECK_CONFIG) $(CONFIG)
	$(BIN)/snakemake --cores $(CORES) prefetch --configfile $(CONFIG)

# Conventions a tool keeps: ruff (lint and format, settings in pyproject.toml), snakefmt, Snakemake's own linter.
LINTED = src workflow/scripts tests benchmarks tools
lint: $(STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/snakemake --lint

bench: $(STAMP)
	for script in benchmarks/bench_*.py; do $(BIN)/python $$script || exit 1; done

clean-demo:
	rm -rf results .snakemake
