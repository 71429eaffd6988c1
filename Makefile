# Every target but `clean` sets the environment up first when needed (tools/setup is a no-op
# when nothing changed) and runs in it through tools/in-env.
SHELL := /bin/bash
IN_ENV := tools/in-env
PROFILE ?= demo

.PHONY: setup test demo bench clean

setup:
	@tools/setup

test: setup
	$(IN_ENV) python -m pytest

demo: setup
	$(IN_ENV) python -m pipeline run --profile $(PROFILE)

bench: setup
	$(IN_ENV) python tools/bench/run_all.py

clean:
	rm -rf outputs data/generated
	find serving_model -mindepth 1 -maxdepth 1 ! -name README.md -exec rm -rf {} +
