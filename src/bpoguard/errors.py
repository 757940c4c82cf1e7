"""The errors bpoguard raises on purpose.

Every error the user can cause is a :class:`BpoguardError`; the CLI prints its
message as one line and exits 1. Messages say what went wrong and what to do,
and never carry a sensitive value.

    BpoguardError
    ├── ConfigError          malformed or missing configuration
    ├── WorkspaceError       workspace missing, already there, unreadable
    ├── StoreError           database unreachable, bad URL, schema out of date
    ├── InputError           a file or option the user gave is not acceptable
    └── LedgerError          the ledger cannot append or does not verify
"""

from __future__ import annotations


class BpoguardError(Exception):
    """Base of every error bpoguard raises for the user to read."""


class ConfigError(BpoguardError):
    """The configuration file or a setting is malformed."""


class WorkspaceError(BpoguardError):
    """The workspace is missing, already exists, or cannot be used."""


class StoreError(BpoguardError):
    """The database cannot be reached, or its URL or schema is wrong."""


class InputError(BpoguardError):
    """A file, value or option given by the user is not acceptable."""


class LedgerError(BpoguardError):
    """The ledger cannot append, or what it holds does not verify."""
