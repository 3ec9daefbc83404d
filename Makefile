# Two entry points for a newcomer: `make demo` (web app on localhost) and `make test`.
# Everything the project needs is installed from here, into .venv.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.oldphoto-installed

.PHONY: test demo install lint clean system-deps space machine krita-zip

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# CPU build of torch from the machine's wheel cache; CUDA users may install their own first.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[app,test,ray]'
	touch $(STAMP)

install: $(STAMP)

# System packages some tests need (browser, GIMP root): one script per need in tests/setup/.
# Each script is idempotent and prints why it skips when the machine does not allow it.
system-deps:
	@for s in tests/setup/*.sh; do [ -e "$$s" ] || continue; bash "$$s" || exit 1; done

# Which machine a test report comes from: CPU model, torch's CPU capability, the ISA variables, threads.
machine: $(STAMP)
	@$(PY) -m oldphoto.cpu

# `machine` first, so a failure report says which CPU it came from; --durations lists the slowest tests.
test: $(STAMP) machine system-deps
	$(PY) -m ruff check core tests gimp_plugin krita_plugin gradio_app hf_space benchmarks
	$(PY) -m pytest --durations=15

demo: $(STAMP)
	$(PY) -m oldphoto.cli demo

# The folder to upload as a Hugging Face Space (hf_space/ plus copies of the two packages it runs).
space:
	$(PYTHON) hf_space/bundle.py build/space

# The Krita plug-in as the archive Tools > Scripts > Import Python Plugin from File accepts.
krita-zip: $(STAMP)
	$(PY) -m oldphoto.cli krita zip build/oldphoto_krita.zip

lint: $(STAMP)
	$(PY) -m ruff check core tests gimp_plugin krita_plugin gradio_app hf_space benchmarks

clean:
	rm -rf $(VENV) build *.egg-info core/*.egg-info .pytest_cache
