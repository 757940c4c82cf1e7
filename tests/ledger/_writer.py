"""A ledger writer in its own process, for the concurrency and crash tests.

    python -m tests.ledger._writer URL TAG COUNT BATCH [KEYFILE EVERY]

Appends COUNT entries {"writer": TAG, "seq": n} in batches of BATCH and prints
"INDEX SEQ" for each entry once its batch is committed (acknowledged),
flushing after every batch. Prints "ready" first, once imports are done.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bpoguard.ledger import Ledger, Signer
from bpoguard.store import Store


def main(argv: list[str]) -> None:
    url, tag, count, batch = argv[0], argv[1], int(argv[2]), int(argv[3])
    signer = Signer.from_pem_file(Path(argv[4]), "test.example/ledger") if len(argv) > 4 else None
    every = int(argv[5]) if len(argv) > 5 else None
    store = Store(url)
    ledger = Ledger(store, signer, checkpoint_every=every)
    out = sys.stdout
    out.write("ready\n")
    out.flush()
    seq = 0
    while seq < count:
        n = min(batch, count - seq)
        indexes = ledger.append_many({"writer": tag, "seq": seq + k} for k in range(n))
        out.write("".join(f"{i} {seq + k}\n" for k, i in enumerate(indexes)))
        out.flush()
        seq += n
    store.dispose()


if __name__ == "__main__":
    main(sys.argv[1:])
