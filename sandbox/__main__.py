"""`python -m domino_orchestrate.sandbox ...`: the sandbox CLI (see `server.main`)."""

import sys

from .server import main

if __name__ == "__main__":
    sys.exit(main())
