"""The pure Merkle core: where each hash lives, and which hashes a proof needs.

The tree is RFC 9162's (section 2.1.1). Every *perfect* subtree (2**level
leaves, aligned) is stored once, as a node numbered in post-order: the order
in which an append-only log completes its nodes (leaf 0, leaf 1, their parent,
leaf 2, ...). New nodes therefore always take the next number, and a full scan
in number order meets each node right after its children.

Proofs are computed from ranges: RFC 9162's PATH and SUBPROOF (sections
2.1.3.1 and 2.1.4.1) name subtrees D[start:end]; each such range is a short
list of perfect nodes (at most one per bit of its size), so a proof needs
O(log n) stored hashes and no rehashing of the log.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping

from bpoguard.ledger.verifier import node_hash

Range = tuple[int, int]  # leaves [start, end)
EMPTY_ROOT = hashlib.sha256(b"").digest()  # MTH({}) (RFC 9162 section 2.1.1)


def position(level: int, index: int) -> int:
    """Post-order number of the perfect node over leaves [index << level, (index + 1) << level)."""
    last = ((index + 1) << level) - 1  # the leaf whose append completes this node
    return nodes_before(last) + level


def nodes_before(size: int) -> int:
    """How many perfect nodes a log of `size` leaves holds: 2 * size - popcount(size)."""
    return 2 * size - size.bit_count()


def perfect_nodes(start: int, end: int) -> list[tuple[int, int]]:
    """The perfect subtrees (level, index) whose leaves make up [start, end), left to right."""
    nodes = []
    while start < end:
        level = (end - start).bit_length() - 1
        while start & ((1 << level) - 1):
            level -= 1
        nodes.append((level, start >> level))
        start += 1 << level
    return nodes


def range_positions(start: int, end: int) -> list[int]:
    """Post-order numbers of the perfect nodes that make up [start, end)."""
    return [position(level, index) for level, index in perfect_nodes(start, end)]


def fold(hashes: Iterable[bytes]) -> bytes:
    """The RFC 9162 root of a range from its perfect nodes' hashes, left to right."""
    stack = list(hashes)
    root = stack.pop()
    while stack:
        root = node_hash(stack.pop(), root)
    return root


def extend(
    size: int, frontier: list[tuple[int, bytes]], leaves: list[bytes]
) -> tuple[list[tuple[int, bytes]], list[tuple[int, bytes]]]:
    """Append leaf hashes to a tree of `size` leaves whose right edge is `frontier`.

    Returns the new nodes as (position, hash), in position order, and the new
    frontier as (level, hash); the root is ``fold`` of the frontier's hashes.
    """
    stack = list(frontier)
    pos = nodes_before(size)
    new: list[tuple[int, bytes]] = []
    add, sha256 = new.append, hashlib.sha256  # bound once: a batch completes ~2 nodes a leaf
    for leaf in leaves:
        add((pos, leaf))
        pos += 1
        level, h = 0, leaf
        while stack and stack[-1][0] == level:
            h = sha256(b"\x01" + stack.pop()[1] + h).digest()  # node_hash, inlined
            level += 1
            add((pos, h))
            pos += 1
        stack.append((level, h))
    return new, stack


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """The subtrees of PATH(index, D[0:size]) (RFC 9162 section 2.1.3.1), leaf upwards."""
    if not 0 <= index < size:
        raise ValueError(f"entry {index} is not inside a tree of size {size}")
    ranges: list[Range] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    ranges.reverse()
    return ranges


def consistency_ranges(size1: int, size2: int) -> list[Range]:
    """The subtrees of PROOF(size1, D[0:size2]) (RFC 9162 section 2.1.4.1), in proof order."""
    if not 0 <= size1 <= size2:
        raise ValueError(f"no consistency proof from size {size1} to size {size2}")
    if size1 in (0, size2):
        return []
    ranges: list[Range] = []
    start, end, m, complete = 0, size2, size1, True
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start, m, complete = start + k, m - k, False
    if not complete:
        ranges.append((start, end))
    ranges.reverse()
    return ranges


NodeReader = Callable[[list[int]], Mapping[int, bytes]]


def resolve(ranges: list[Range], read: NodeReader) -> list[bytes]:
    """The hash of each range, reading all needed perfect nodes in one call."""
    wanted = [range_positions(start, end) for start, end in ranges]
    found = read(sorted({p for positions in wanted for p in positions}))
    try:
        return [fold(found[p] for p in positions) for positions in wanted]
    except KeyError as exc:
        raise LookupError(f"node {exc.args[0]} is not stored") from None
