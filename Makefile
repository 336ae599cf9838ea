# make setup                      create .venv (idempotent, cached)
# make grade LAB=lab_2_1          grade labs/lab_2_1 (MODE=solution|starter to check graders)
# make test                       the project's own tests (all of them: engines, servers, gradings)
# make test-fast                  the tests that start no engine, server or grading (minutes)
# make browser                    headless Chromium for the HTML report test (apt, idempotent)
LAB ?= lab_2_1
MODE ?=
PROFILE ?= auto
VENV ?= .venv

.PHONY: setup grade test test-fast bench stability browser
setup:
	@scripts/setup.sh

grade: setup
	$(VENV)/bin/python -m pytest labs/$(LAB) --grade --profile $(PROFILE) $(if $(MODE),--$(MODE))

# two workers: most gradings are single-threaded start-ups; timing gradings run alone
# (tests/grading_slots.py)
TEST_ARGS = -p no:cacheprovider -n 2 --dist loadfile --durations=20
test: setup browser
	$(VENV)/bin/python -m pytest tests $(TEST_ARGS)

# slow tests are marked at collection (tests/conftest.py); a grading started here fails
test-fast: setup
	LABGRADE_FAST_LANE=1 $(VENV)/bin/python -m pytest tests $(TEST_ARGS) -m "not slow"

bench: setup
	$(VENV)/bin/python benchmarks/grade_walltime.py --lab $(LAB)

stability: setup
	$(VENV)/bin/python benchmarks/stability.py --lab $(LAB)

browser:
	@scripts/install-chromium.sh
