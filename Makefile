# The two commands of the README. Both set up ./.venv first (idempotent, fast the second time).
.PHONY: run test screenshots

run:
	bash scripts/setup.sh
	.venv/bin/lora-studio prepare
	.venv/bin/lora-studio ui

test:
	bash scripts/setup.sh --test
	.venv/bin/python -m pytest

# The README's pictures: copy the screenshots of the latest browser-test run into docs/screenshots/.
screenshots:
	cp build/screenshots/*.png docs/screenshots/
