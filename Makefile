# Two commands do everything: `make tutorial` and `make test` (see README.md).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
RUN_ROOT ?= runs/tutorial

.PHONY: setup tutorial test lint lab bench checkpoints clean-runs student book instructors

## setup: create .venv if missing and install the package with the exact versions of constraints.txt
setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)
	@echo "setup: environment ready in $(VENV)"

## tutorial: generate the default data and execute every notebook in order, headless
tutorial: setup
	$(BIN)/python scripts/run_notebooks.py --run-root $(RUN_ROOT)

## test: the whole test suite (notebooks executed in quick mode) and ruff
test: setup
	$(BIN)/ruff check .
	IIC_QUICK=1 $(BIN)/python -m pytest -q -n 2

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check iic_helpers tests scripts

## student: write student/NN_*.ipynb from the solution notebooks (blanks, no answers, no outputs)
student: setup
	$(BIN)/python scripts/make_student.py

## book: static HTML site of the executed notebooks in runs/book/html (needs npm once, for MathJax)
book: setup
	$(BIN)/python scripts/build_book.py

## instructors: refresh the timing table in INSTRUCTORS.md from the notebooks' execution records
instructors: setup
	$(BIN)/python scripts/instructors_table.py

## checkpoints: retrain the shipped tiny-preset checkpoints and fine-tuning runs on the CPU (see README)
checkpoints: setup
	$(BIN)/python scripts/make_checkpoints.py

## lab: open JupyterLab on the notebooks (as root, e.g. in a container, with --allow-root)
lab: setup
	@if [ "$$(id -u)" = "0" ]; then \
		echo "lab: running as root (a container or JupyterHub image?): passing --allow-root"; \
		$(BIN)/jupyter lab --allow-root notebooks/; \
	else \
		$(BIN)/jupyter lab notebooks/; \
	fi

## bench: speed/memory benchmarks (ratios against baselines measured in the same run); each CPU
## benchmark runs natively, then limited to AVX2 (--isa both): results/<name>.json and <name>_avx2.json
bench: setup
	@if ls benchmarks/*.py >/dev/null 2>&1; then \
		for f in benchmarks/*.py; do $(BIN)/python $$f || exit 1; done; \
	else echo "bench: no benchmark scripts yet"; fi

clean-runs:
	rm -rf runs/
