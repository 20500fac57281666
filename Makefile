# The two commands of the README. Both set up ./.venv first (idempotent, fast the second time).
.PHONY: run test

run:
	bash scripts/setup.sh
	.venv/bin/lora-studio prepare
	.venv/bin/lora-studio ui

test:
	bash scripts/setup.sh --test
	.venv/bin/python -m pytest
