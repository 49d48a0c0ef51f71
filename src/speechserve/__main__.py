"""`python -m speechserve` runs the command line."""

import sys

from speechserve.cli import main

if __name__ == "__main__":
    sys.exit(main())
