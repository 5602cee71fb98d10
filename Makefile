# provml — `make run` starts everything with the demo; `make test` runs the whole suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 5000
DATA   ?= ./provml-data

.PHONY: run test test-core test-frameworks bench-integrations lint typecheck clean help bench-capture bench-load bench-query bench-ingest bench-broker bench-web screenshots chaos

help:
	@echo "make run    - install, serve on 127.0.0.1:$(PORT) with the demo, keep serving"
	@echo "make test   - install dev extras, then ruff, mypy and pytest; then test-frameworks"
	@echo "make test-core - ruff, mypy and pytest without the frameworks' tests"
	@echo "make test-frameworks - install torch (CPU), Lightning, Transformers, Keras, XGBoost,"
	@echo "               LightGBM, Dask, Snakemake and MLflow; run tests/frameworks"
	@echo "make bench-query - p50/p95 of every named question on >= 5 M generated triples"
	@echo "make bench-load [BENCH_ARGS='--duration 120 --clients 4'] - pipeline load test"
	@echo "make bench-ingest [BENCH_ARGS='--workflows 300 --repeats 3'] - records to queryable triples/s"
	@echo "make chaos [ROUNDS=30] - kill tracker and manager (and, through the broker, Redis and"
	@echo "               managers) at random while workflows capture"
	@echo "make bench-web - the browser's pages and endpoints on 10,000 runs; a 1,000-node layout"
	@echo "make screenshots - run the browser tests and copy their screenshots to docs/img/web"
	@echo "make bench-integrations - each integration's cost against the same loop without it"
	@echo "make bench-broker - 1, 2, 4 managers consuming a Redis stream; AOF always vs everysec"
	@echo "make bench-capture [BENCH_ARGS='--tasks 20000 --repeats 1'] - capture overhead vs peers"

# editable_mode=compat puts the checkout itself on sys.path, so that tools that find
# plugins by listing sys.path (snakemake --logger provml) see provml's as they would in a
# normal install
$(VENV)/.run-stamp: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[demo]' --config-settings editable_mode=compat
	touch $@

$(VENV)/.dev-stamp: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]' --config-settings editable_mode=compat
	# the real ProvLake client, for the compatibility tests: it declares Python < 3.9 and
	# pulls pandas it does not need for capture (requests-futures, in dev, it does need)
	$(BIN)/pip install -q --no-deps --ignore-requires-python provlake==0.2.982
	# Virtuoso open source, for the store contract tests (a Debian package)
	command -v virtuoso-t >/dev/null || { apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q virtuoso-opensource-7-bin; }
	# Redis, for the broker's tests (tests/broker start their own redis-server; a Debian package)
	command -v redis-server >/dev/null || { apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server; }
	# Chromium and its WebDriver, for the lineage browser's tests in a real browser (tests/web)
	command -v chromedriver >/dev/null || { apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; }
	# docker-compose (Debian's, without the Docker engine it recommends): the deploy tests
	# check docker-compose.yml with `docker-compose config`, which needs no engine
	command -v docker-compose >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive \
	  apt-get install -y -q --no-install-recommends docker-compose; }
	touch $@ $(VENV)/.run-stamp

run: $(VENV)/.run-stamp
	$(BIN)/provml serve --host 127.0.0.1 --port $(PORT) --data-dir $(DATA) --demo

lint: $(VENV)/.dev-stamp
	$(BIN)/ruff check provml capture_lib tracker manager query examples tests bench
	$(BIN)/ruff format --check provml capture_lib tracker manager query examples tests bench
	# the allowed imports between layers (docs/architecture.md, pyproject.toml)
	$(BIN)/lint-imports

typecheck: $(VENV)/.dev-stamp
	$(BIN)/mypy

# the whole suite: the core tests, then the frameworks' (each part can be run alone)
test: test-core test-frameworks

test-core: lint typecheck
	$(BIN)/pytest --ignore=tests/frameworks

# the integrations with the real frameworks (torch's CPU build, Lightning, Transformers,
# Keras, XGBoost, LightGBM, Dask, Snakemake, MLflow): a separate install of about 1.5 GB
test-frameworks: $(VENV)/.frameworks-stamp
	PROVML_REQUIRE_FRAMEWORKS=1 KERAS_BACKEND=torch $(BIN)/pytest tests/frameworks

$(VENV)/.frameworks-stamp: $(VENV)/.dev-stamp
	$(BIN)/pip install -q -e '.[frameworks]' --config-settings editable_mode=compat
	touch $@

# the fault-injection suites with many rounds (make test runs 8 rounds of the pipeline's, and 4
# of the broker's with a Redis that keeps what it acknowledged and 4 with one that loses it)
chaos: $(VENV)/.dev-stamp
	PROVML_CHAOS_ROUNDS=$${ROUNDS:-30} $(BIN)/pytest -s tests/e2e/test_pipeline_faults.py \
	  tests/broker/test_broker_chaos.py

# each peer gets its own virtualenv under bench/.venvs (created on first run, ~1 GB)
bench-capture: $(VENV)/.run-stamp
	$(BIN)/python bench/capture.py $(BENCH_ARGS)

# latency of every named question on a generated store of >= 5 M triples (built once, reused)
bench-query: $(VENV)/.run-stamp
	$(BIN)/python bench/query.py $(BENCH_ARGS)

# several client processes POST batches to a tracker and a manager process for 2 minutes
bench-load: $(VENV)/.run-stamp
	$(BIN)/python bench/load.py $(BENCH_ARGS)

bench-attacks: $(VENV)/.run-stamp
	$(BIN)/python bench/attacks.py $(BENCH_ARGS)

bench-ingest: $(VENV)/.dev-stamp
	$(BIN)/python bench/ingest.py $(BENCH_ARGS)

# the Redis Streams broker: 1, 2, 4 managers on one Oxigraph server; appendfsync always vs everysec
bench-broker: $(VENV)/.dev-stamp
	PATH=$(BIN):$$PATH $(BIN)/python bench/broker.py $(BENCH_ARGS)

# the browser's endpoints and pages on 10,000 runs, and a 1,000-node lineage laid out in
# headless Chromium (bench/README.md, "The lineage browser")
bench-web: $(VENV)/.dev-stamp
	$(BIN)/python bench/web_api.py $(BENCH_ARGS)
	$(BIN)/python bench/web_layout.py

# the browser tests, then their screenshots into docs/img/web (README, docs/web.md)
SHOTS := runs run-demo run-failed lineage-up lineage-folded model-demo dataset prediction compare search signin report
screenshots: $(VENV)/.dev-stamp
	$(BIN)/pytest -q tests/web
	mkdir -p docs/img/web
	for s in $(SHOTS); do cp test-output/screenshots/$$s.png docs/img/web/; done

clean:
	rm -rf $(VENV) $(DATA) prov-logs bench/.venvs bench/.data bench/results .pytest_cache .mypy_cache .ruff_cache .import_linter_cache

# what each integration costs the loop it instruments (docs/integrations.md, bench/README.md)
bench-integrations: $(VENV)/.frameworks-stamp
	$(BIN)/python bench/integrations.py $(BENCH_ARGS)
	$(BIN)/python bench/integrations_boost.py
	KERAS_BACKEND=torch $(BIN)/python bench/integrations_keras.py
	$(BIN)/python bench/integrations_lightning.py
	$(BIN)/python bench/integrations_transformers.py
	$(BIN)/python bench/integrations_dask.py
	$(BIN)/python bench/integrations_snakemake.py
