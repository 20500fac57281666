# The two commands of the README. Both set up ./.venv first (idempotent, fast the second time).
.PHONY: run test lint lock screenshots

run:
	bash scripts/setup.sh
	.venv/bin/lora-studio prepare
	.venv/bin/lora-studio ui

# Static checks first: they take seconds and fail on any finding, before the long test suite starts.
# Two workers, a whole test module each at a time: a studio test's processes (studio, job, browser) leave
# a core idle about half the time, so two cores finish the suite in about two thirds of the time. Modules
# start in the order collected (tests/conftest.py puts the longest first), not xdist's most-tests-first.
test:
	bash scripts/setup.sh --test
	$(MAKE) --no-print-directory lint
	.venv/bin/python -m pytest -n 2 --dist loadscope --no-loadscope-reorder

lint:
	.venv/bin/ruff check .
	.venv/bin/lint-imports
	.venv/bin/mypy

# constraints.txt from the packages in ./.venv (run after a dependency change once the suite passes there).
# It checks the pins with python3.12 and python3.13 too; with pyenv: PYENV_VERSION=3.11.7:3.12.1:3.13.0 make lock
lock:
	.venv/bin/python scripts/lock.py

# The README's pictures: copy the screenshots of the latest browser-test run into docs/screenshots/.
screenshots:
	cp build/screenshots/*.png docs/screenshots/
