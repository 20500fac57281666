"""`python -m cli …` is `lora-studio …`."""

import sys

from cli.main import main

sys.exit(main())
