"""Importers: logs a BPO already keeps, streamed into the event lake.

Each importer reads files of any size in blocks, imports each file whole or
not at all, adds nothing when the same file comes twice (``events.imports``),
and names bad lines by number. Mappings to the event schema are documented in
docs/events.md.
"""

from bpoguard.events.importers._common import BadLine, FileReport, ImportReport
from bpoguard.events.importers.cert import import_cert
from bpoguard.events.importers.entra import import_entra
from bpoguard.events.importers.generic import Mapping, import_events, load_mapping
from bpoguard.events.importers.hr import import_assets, import_hr
from bpoguard.events.importers.m365 import import_m365

__all__ = [
    "BadLine",
    "FileReport",
    "ImportReport",
    "Mapping",
    "import_assets",
    "import_cert",
    "import_entra",
    "import_events",
    "import_hr",
    "import_m365",
    "load_mapping",
]
