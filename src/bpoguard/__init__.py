"""bpoguard: keep outsourced customer data out of criminals' hands.

The package is laid out by the product's verbs (see docs/ and DESIGN.md):
``store`` (database), ``events`` (the event lake), ``simulate`` (a synthetic
BPO world), ``ledger`` (tamper-evident log), ``cli`` (the ``bpoguard`` command).
"""

from bpoguard.errors import BpoguardError

__version__ = "0.1.0"

__all__ = ["BpoguardError", "__version__"]
