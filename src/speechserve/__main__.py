"""`python -m speechserve` runs the command line."""

import sys

from speechserve.cli import main

sys.exit(main())
