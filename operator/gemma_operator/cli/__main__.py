"""`python -m gemma_operator.cli`, the same as the `gemma-operator` script."""

import sys

from gemma_operator.cli import main

sys.exit(main())
