"""record: the tamper-evident ledger of every guard decision.

An append-only Merkle-tree log in the manner of RFC 9162, with signed
checkpoints in the C2SP tlog-checkpoint format and inclusion and consistency
proofs that :mod:`bpoguard.ledger.verifier` checks offline, without bpoguard.

    ledger = Ledger.for_workspace(ws)
    index = ledger.append({"decision": "deny", "field": "card_number", ...})
    checkpoint = ledger.checkpoint()
    proof = ledger.inclusion_proof(index, checkpoint.size)

Entries must never hold a sensitive value: field names, record ids,
decisions and reasons only.
"""

from bpoguard.ledger._checkpoint import Checkpoint, Signer, open_checkpoint, read_verifier_key
from bpoguard.ledger._ledger import ConsistencyProof, InclusionProof, Ledger
from bpoguard.ledger._verify import VerifyReport
from bpoguard.ledger.verifier import VerifierKey, canonical_json

__all__ = [
    "Checkpoint",
    "ConsistencyProof",
    "InclusionProof",
    "Ledger",
    "Signer",
    "VerifierKey",
    "VerifyReport",
    "canonical_json",
    "open_checkpoint",
    "read_verifier_key",
]
