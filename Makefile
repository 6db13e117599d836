PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test bench clean histories chaos

$(STAMP): pyproject.toml
	@command -v $(PY) >/dev/null 2>&1 || { echo "python3.11 not found; set PY=/path/to/python3.11"; exit 1; }
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python demo.py $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest -q $(ARGS)

# Performance (README "Performance"): make bench ARGS="--payments 50 --concurrency 1,4,16"
# The bench extra adds matplotlib for the chart; results go to results/ (git-ignored).
BENCH_STAMP := $(VENV)/.installed-bench
$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install -q -e ".[test,bench]"
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python -m bench $(ARGS)

clean:
	rm -rf $(VENV) .data results

# Re-record the saved histories the replay tests use (only when a change is deliberately versioned).
# Recording encrypts with the committed test-only key tests/histories/test-payload-keys (not a
# secret; tests/conftest.py), so the new histories are ciphertext every later session replays.
histories: $(STAMP)
	rm -f tests/histories/*.json
	RECORD_HISTORIES=1 $(BIN)/python -m pytest -q tests/e2e tests/workflows/test_bkash_timers.py tests/workflows/test_monetix_timers.py

# The long chaos run (README "Proving it loses nothing"); make chaos ARGS="--seed 11 --count 300"
chaos: $(STAMP)
	$(BIN)/python -m chaos $(ARGS)
