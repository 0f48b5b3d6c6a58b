# segment-cadence: set-up and the everyday commands. Everything installs into .venv from
# the pinned constraints; all state goes to var/ (override with SEGMENT_CADENCE_HOME).
PYTHON ?= python3
# Optional extras to install besides dev (CI adds deploy: make test EXTRAS=dev,deploy).
EXTRAS ?= dev
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SPARK_STAMP := $(VENV)/.installed-spark

.PHONY: setup run test test-quick test-properties test-spark spark-server ui bench lint format clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[$(EXTRAS)]'
	touch $(STAMP)

setup: $(STAMP)
	$(BIN)/segment-cadence parse

## Set up from nothing, generate example data, refresh the last 3 months, print results.
run: setup
	$(BIN)/segment-cadence demo

## Set up from nothing and run the whole test suite, on two pytest-xdist workers (each with its
## own dbt target directory: tests/conftest.py). TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2
test: setup
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadgroup

## The edit-test loop: the suite without the tests marked slow (a refresh, a dbt build or a
## long fit each; tests/conftest.py). `make test` stays the whole suite.
test-quick: setup
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadgroup -m "not slow"

## The alert lifecycle's property-based test at length (300 random sequences of 40 events,
## about 6 minutes; the normal suite runs a bounded dozen).
test-properties: setup
	HYPOTHESIS_PROFILE=long $(BIN)/python -m pytest -q -p no:logging tests/test_alert_lifecycle.py

$(SPARK_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,spark]'
	touch $(SPARK_STAMP)

## The dbt models on Spark (local mode, needs Java 17): one month compared with DuckDB.
test-spark: setup $(SPARK_STAMP)
	$(BIN)/python -m pytest -q -m spark

## A local Spark SQL endpoint (Spark's Thrift server, needs Java 17) until Ctrl-C, on
## 127.0.0.1:10000 (SPARK_ARGS="--port 0" picks a free port); its metastore in var/spark.
spark-server: setup $(SPARK_STAMP)
	$(BIN)/python -m segment_cadence.platform.spark_server $(SPARK_ARGS)

## Open the Dagster UI on http://127.0.0.1:3000 with the local instance.
ui: setup
	SEGMENT_CADENCE_HOME=$(CURDIR)/var $(BIN)/python -c "from segment_cadence.cli.main import prepare_dagster_home; prepare_dagster_home()"
	DAGSTER_HOME=$(CURDIR)/var/dagster_home $(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

## The benchmark (1M customers by default; BENCH_ARGS="--customers 10000000" for more).
bench: setup
	$(BIN)/python -m bench.run $(BENCH_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

clean:
	rm -rf var dbt_project/target dbt_project/target-* dbt_project/logs
