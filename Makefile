# The two commands of the README: `make demo` and `make test`. Both set
# everything up first; a second run finds everything in place and redoes nothing.
PYTHON ?= python3
PIP := $(PYTHON) -m pip
STAMPS := .make
OPS_SOURCES := $(shell find ops_dcnv3/src ops_dcnv3/setup.py -name '*.cpp' -o -name '*.cu' -o -name '*.cuh' -o -name '*.h' -o -name 'setup.py')
MMCV_VERSION := 2.1.0

.PHONY: install test demo bench clean cuda-build-check gpu-check

# ops_dcnv3 and the project are editable installs of one checkout: redo them
# when they point at another one (e.g. after a run in a fresh clone).
INSTALLED_AT := $(shell cd / && $(PYTHON) -c 'import os, ops_dcnv3; print(os.path.dirname(os.path.dirname(ops_dcnv3.__file__)))' 2>/dev/null)
ifneq ($(INSTALLED_AT),$(CURDIR))
$(shell rm -f $(STAMPS)/ops $(STAMPS)/project)
endif

install: $(STAMPS)/project

# torch: keep the one installed (GPU users bring their own CUDA build);
# otherwise the local CPU wheel.
$(STAMPS)/torch:
	@mkdir -p $(STAMPS)
	@$(PYTHON) -c 'import torch' 2>/dev/null \
		&& echo "torch $$($(PYTHON) -c 'import torch; print(torch.__version__)') is installed: keeping it" \
		|| $(PIP) install torch==2.13.0
	@touch $@

$(STAMPS)/build-tools: $(STAMPS)/torch requirements/build.txt
	$(PIP) install -r requirements/build.txt
	@touch $@

# mmcv with its compiled ops, from source against the installed torch.
$(STAMPS)/mmcv: $(STAMPS)/build-tools
	@if $(PYTHON) -c 'import mmcv, mmcv.ops, sys; sys.exit(mmcv.__version__ != "$(MMCV_VERSION)")' 2>/dev/null; then \
		echo "mmcv $(MMCV_VERSION) with ops is installed"; \
	else \
		echo ">>> Building mmcv $(MMCV_VERSION) with its ops from source: about 13 minutes on 2 cores (pip caches the wheel afterwards)"; \
		MMCV_WITH_OPS=1 MAX_JOBS=$${MAX_JOBS:-$$(nproc)} $(PIP) install --no-build-isolation mmcv==$(MMCV_VERSION); \
	fi
	@touch $@

$(STAMPS)/deps: $(STAMPS)/mmcv requirements/runtime.txt requirements/mminstall.txt requirements/tests.txt
	$(PIP) install -r requirements/runtime.txt -r requirements/mminstall.txt -r requirements/tests.txt
	@touch $@

# ops_dcnv3: CPU kernel always, CUDA with a toolkit and a GPU or FORCE_CUDA=1.
$(STAMPS)/ops: $(STAMPS)/build-tools $(OPS_SOURCES)
	$(PIP) install --no-build-isolation --no-deps -e ./ops_dcnv3
	@touch $@

$(STAMPS)/project: $(STAMPS)/deps $(STAMPS)/ops pyproject.toml
	$(PIP) install --no-build-isolation --no-deps -e .
	@touch $@

# Compile-only check of the CUDA sources against the installed torch's
# headers, so CUDA compile errors show without a GPU (skipped without nvcc).
$(STAMPS)/cuda-compile: $(STAMPS)/torch $(OPS_SOURCES) cuda_checks/check_cuda_compile.py
	$(PYTHON) cuda_checks/check_cuda_compile.py
	@touch $@

test: install $(STAMPS)/cuda-compile
	$(PYTHON) -m pytest tests

# The CUDA build against a CUDA build of torch, out of tree (build/
# cuda-build-check), for one architecture, and tests/ops_dcnv3 with CPU
# tensors against it: catches faults of the CUDA build's host side (compile
# flags, linking) without a GPU. Its venv (5.5 GB) lives in $(CUDA_VENV).
# Skipped without nvcc. .ci/run runs it after `make test`.
CUDA_VENV ?= $(STAMPS)/cuda-venv
CUDA_ARCH ?= 9.0
$(CUDA_VENV)/installed: requirements/cuda-check.txt requirements/build.txt
	$(PYTHON) -m venv $(CUDA_VENV)
	$(CUDA_VENV)/bin/python -m pip install -r requirements/cuda-check.txt
	@touch $@

cuda-build-check:
	@if command -v nvcc >/dev/null || [ -x "$${CUDA_HOME:-/usr/local/cuda}/bin/nvcc" ]; then \
		$(MAKE) --no-print-directory $(CUDA_VENV)/installed \
		&& $(CUDA_VENV)/bin/python cuda_checks/cuda_build_check.py --arch $(CUDA_ARCH); \
	else \
		echo "SKIP: cuda-build-check: nvcc not found (set CUDA_HOME or put nvcc on PATH)"; \
	fi

# Everything that needs a GPU, on a machine with one and a CUDA build of
# torch (torch and pytest suffice; no install step): builds the op for the
# visible GPU, runs tests/ops_dcnv3 and the backbone goldens on CUDA and the
# CUDA benchmark; logs and summary in build/gpu-check. See benchmarks/gpu_check.py.
gpu-check:
	$(PYTHON) benchmarks/gpu_check.py

# Generates synthetic COCO/ADE20K data, fine-tunes and evaluates the tiny
# Mask R-CNN and UperNet demos from the shipped pretrained backbone, draws
# their predictions; fails below bbox_mAP_50 0.9 or mIoU 60.
demo: install
	PYTHON=$(PYTHON) bash tools/demo.sh

bench: install
	$(PYTHON) benchmarks/bench_dcnv3_cpu.py

clean:
	rm -rf $(STAMPS) build ops_dcnv3/build ops_dcnv3/_C*.so
