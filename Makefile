# make setup                      create .venv (idempotent, cached)
# make grade LAB=lab_2_1          grade labs/lab_2_1 (MODE=solution|starter to check graders)
# make test                       the project's own tests
LAB ?= lab_2_1
MODE ?=
PROFILE ?= auto
VENV ?= .venv

.PHONY: setup grade test bench
setup:
	@scripts/setup.sh

grade: setup
	$(VENV)/bin/python -m pytest labs/$(LAB) --grade --profile $(PROFILE) $(if $(MODE),--$(MODE))

test: setup
	$(VENV)/bin/python -m pytest tests -p no:cacheprovider

bench: setup
	$(VENV)/bin/python benchmarks/grade_walltime.py --lab $(LAB)
