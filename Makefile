# Two commands for a fresh machine:  `make book`  and  `make test`  (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PROFILE ?= lite
DATA_ROOT ?=
# Extra papermill parameters, e.g. PARAMS="-p seed 7"
PARAMS ?=
# Notebooks the rehearsal runs side by side (2: one core each; 1: one at a time, e.g. beside other work)
REHEARSAL_LANES ?= 2
NB_PARAMS := -p profile $(PROFILE) $(if $(DATA_ROOT),-p data_root $(DATA_ROOT)) $(PARAMS)

IMGAUG_VENV := .venv-imgaug
IMGAUG_STAMP := $(IMGAUG_VENV)/.installed-stamp
IMGAUG_REF := _build/imgaug/reference.npz

.PHONY: book test install data notebooks rehearsal html unit check-built sync clean imgaug-env imgaug-reference \
	gpu-check-smoke

book: notebooks html  ## install, fetch the lite data, execute every notebook, render the HTML book
	@echo "The book is at _build/stage/_build/html/index.html"

test: data imgaug-reference  ## unit tests (imgaug compared via its side env), every notebook executed (lite, then full on a miniature), book built with -W, results checked
	$(PY) -m pytest tests -m "not built" --durations=15
	$(MAKE) notebooks PROFILE=lite
	$(MAKE) rehearsal
	$(MAKE) gpu-check-smoke
	$(MAKE) html
	$(PY) -m pytest tests -m built

$(STAMP): requirements-lock.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r requirements-lock.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

install: $(STAMP)

# imgaug 0.4 imports only beside numpy < 2: a small side environment runs it and writes its warps to a reference
# file that the main suite compares with the package's warp backends (tests/manipulate/test_imgaug_reference.py).
$(IMGAUG_STAMP): requirements-imgaug.txt
	rm -rf $(IMGAUG_VENV)
	$(PYTHON) -m venv $(IMGAUG_VENV)
	$(IMGAUG_VENV)/bin/python -m pip install --quiet --no-deps --require-hashes -r requirements-imgaug.txt
	touch $@

imgaug-env: $(IMGAUG_STAMP)  ## the imgaug side environment (.venv-imgaug: numpy<2 + imgaug 0.4, hash-pinned)

$(IMGAUG_REF): $(IMGAUG_STAMP) tools/imgaug_reference.py
	$(IMGAUG_VENV)/bin/python -W ignore::FutureWarning tools/imgaug_reference.py $@

imgaug-reference: $(IMGAUG_REF)  ## imgaug's PiecewiseAffine outputs for fixed seeds, written by the side environment

data: install  ## fetch the lite data into ~/.cache/aigfd_lite (or $AIGFD_CACHE), verified by sha256, and build the face corpus and the CelebA crops
	$(PY) -m aigfd_lite.fetch
	$(PY) -m aigfd_lite.faces
	$(PY) -m aigfd_lite.faces.celeba

notebooks: data  ## execute the notebooks with papermill into _build/executed/ (PROFILE, DATA_ROOT, PARAMS pass through)
	$(PY) tools/book.py execute $(NB_PARAMS)

rehearsal: data  ## every notebook with profile = "full" on a miniature of the paper's data, tiny sizes (tools/rehearse.py): _build/rehearsal/
	$(PY) tools/rehearse.py --lanes $(REHEARSAL_LANES)

gpu-check-smoke: data  ## tools/gpu_check.py --smoke: every part of the GPU check at tiny sizes on this CPU (tests/test_gpu_check.py reads it)
	$(PY) tools/gpu_check.py --smoke --out _build/gpu_check_smoke.json

html: install  ## render the book from the executed copies, warnings as errors
	$(PY) tools/book.py stage
	$(VENV)/bin/jupyter-book build _build/stage --builder html -W -n --keep-going

sync: install  ## after editing book/*.md, update the paired notebooks (outputs are never committed)
	$(VENV)/bin/jupytext --sync book/[0-9]*.md

clean:
	rm -rf _build
