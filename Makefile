# make setup                      create .venv (idempotent, cached)
# make grade LAB=lab_2_1          grade labs/lab_2_1 (MODE=solution|starter to check graders)
# make test                       the project's own tests
# make browser                    headless Chromium for the HTML report test (apt, idempotent)
LAB ?= lab_2_1
MODE ?=
PROFILE ?= auto
VENV ?= .venv

.PHONY: setup grade test bench stability browser
setup:
	@scripts/setup.sh

grade: setup
	$(VENV)/bin/python -m pytest labs/$(LAB) --grade --profile $(PROFILE) $(if $(MODE),--$(MODE))

test: setup browser
	$(VENV)/bin/python -m pytest tests -p no:cacheprovider

bench: setup
	$(VENV)/bin/python benchmarks/grade_walltime.py --lab $(LAB)

stability: setup
	$(VENV)/bin/python benchmarks/stability.py --lab $(LAB)

browser:
	@scripts/install-chromium.sh
