# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
OUT ?= out/demo
DEMO_CT := src/lungseg/sample_data/lidc_idri_0003_nodule.nrrd

.PHONY: install demo test test-slow test-all bench weights clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first, pinned: any other route resolves a newer CUDA build (gigabytes)
	$(PIP) install -q "torch==2.13.0"
	$(PIP) install -q -e ".[web,dev]"
	# optional dense-CRF refinement (builds from source): its tests skip when the build fails
	$(PIP) install -q -e ".[crf]" || echo "pydensecrf2 did not build: --crf and its tests are unavailable"
	touch $(STAMP)

install: $(STAMP)

demo: install  # a LIDC-IDRI-0003 crop at 0.82 mm (CC BY 3.0): both lungs and a ~31 mm nodule
	$(VENV)/bin/lungseg segment $(DEMO_CT) -o $(OUT)/sample_mask.nii.gz \
		--report $(OUT)/sample_report.json --preview $(OUT)/sample_preview.png
	@echo "wrote $(OUT)/sample_mask.nii.gz, $(OUT)/sample_report.json, $(OUT)/sample_preview.png"

test: install
	PYTHON=$(PY) bash scripts/install_browser.sh  # Debian chromium + playwright for the browser test
	bash scripts/install_dicom3tools.sh || echo "dicom3tools did not install: the dciodvfy checks skip"
	$(VENV)/bin/pytest -q

test-slow: install  # exit code 5 = no test carries the mark yet
	$(VENV)/bin/pytest -q -m slow || [ $$? -eq 5 ]

test-all: install
	$(VENV)/bin/pytest -q -m "slow or not slow"

weights: install  # retrain the shipped default models from scratch (CPU, see MODEL_CARD.md)
	$(PY) scripts/train_default_models.py

bench: install
	$(PY) benchmarks/classical.py

clean:
	rm -rf out build dist .pytest_cache
