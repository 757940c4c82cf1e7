"""`python -m bpoguard.ledger ...` runs the standalone verifier (see verifier.py)."""

import sys

from bpoguard.ledger.verifier import main

sys.exit(main())
