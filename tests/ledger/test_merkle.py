"""The Merkle core against RFC 9162 / RFC 6962 reference vectors and a naive reference."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bpoguard.ledger import _merkle
from bpoguard.ledger.verifier import (
    ProofError,
    leaf_hash,
    node_hash,
    root_from_inclusion,
    verify_consistency,
    verify_inclusion,
)

# The eight test leaves of the Certificate Transparency reference tests.
LEAVES = [
    bytes.fromhex(h)
    for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
              "606162636465666768696a6b6c6d6e6f"]
]  # fmt: skip

# Roots of the trees of the first 1..8 leaves (CT merkle_tree_test.cc).
ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]

# (leaf index, tree size, path) from the CT reference tests (0-based indexes).
INCLUSION = [
    (0, 1, []),
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip

# (first size, second size, proof) from the CT reference tests.
CONSISTENCY = [
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip


# --- A naive reference, written straight from RFC 9162 section 2.1 -----------------------


def ref_mth(leaves: list[bytes]) -> bytes:
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + ref_mth(leaves[:k]) + ref_mth(leaves[k:])).digest()


def ref_path(m: int, leaves: list[bytes]) -> list[bytes]:
    n = len(leaves)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return [*ref_path(m, leaves[:k]), ref_mth(leaves[k:])]
    return [*ref_path(m - k, leaves[k:]), ref_mth(leaves[:k])]


def ref_subproof(m: int, leaves: list[bytes], b: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if b else [ref_mth(leaves)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return [*ref_subproof(m, leaves[:k], b), ref_mth(leaves[k:])]
    return [*ref_subproof(m - k, leaves[k:], False), ref_mth(leaves[:k])]


def ref_proof(m: int, leaves: list[bytes]) -> list[bytes]:
    return [] if m in (0, len(leaves)) else ref_subproof(m, leaves, True)


# --- The core, computing hashes from a store of perfect nodes ----------------------------


def build(leaves: list[bytes]) -> tuple[dict[int, bytes], list[tuple[int, bytes]]]:
    """Append leaves one batch at a time, as the ledger does; return node store and frontier."""
    store: dict[int, bytes] = {}
    frontier: list[tuple[int, bytes]] = []
    for size, data in enumerate(leaves):
        new, frontier = _merkle.extend(size, frontier, [leaf_hash(data)])
        store.update(new)
    return store, frontier


def reader(store: dict[int, bytes]) -> _merkle.NodeReader:
    return lambda positions: {p: store[p] for p in positions if p in store}


def root_of(store: dict[int, bytes], size: int) -> bytes:
    if size == 0:
        return _merkle.EMPTY_ROOT
    return _merkle.resolve([(0, size)], reader(store))[0]


def inclusion(store: dict[int, bytes], index: int, size: int) -> list[bytes]:
    return _merkle.resolve(_merkle.inclusion_ranges(index, size), reader(store))


def consistency(store: dict[int, bytes], m: int, n: int) -> list[bytes]:
    return _merkle.resolve(_merkle.consistency_ranges(m, n), reader(store))


STORE, _ = build(LEAVES)


@pytest.mark.parametrize("size", range(1, 9))
def test_root_matches_the_ct_reference_vector(size: int) -> None:
    assert root_of(STORE, size).hex() == ROOTS[size - 1]
    assert ref_mth(LEAVES[:size]).hex() == ROOTS[size - 1]


def test_root_of_the_empty_tree_is_the_hash_of_nothing() -> None:
    assert _merkle.EMPTY_ROOT.hex() == hashlib.sha256(b"").hexdigest()


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION)
def test_inclusion_path_matches_the_ct_reference_vector(
    index: int, size: int, path: list[str]
) -> None:
    assert [h.hex() for h in inclusion(STORE, index, size)] == path
    root = bytes.fromhex(ROOTS[size - 1])
    verify_inclusion(index, size, leaf_hash(LEAVES[index]), [bytes.fromhex(h) for h in path], root)


@pytest.mark.parametrize(("m", "n", "proof"), CONSISTENCY)
def test_consistency_proof_matches_the_ct_reference_vector(
    m: int, n: int, proof: list[str]
) -> None:
    assert [h.hex() for h in consistency(STORE, m, n)] == proof
    verify_consistency(
        m,
        n,
        bytes.fromhex(ROOTS[m - 1]),
        bytes.fromhex(ROOTS[n - 1]),
        [bytes.fromhex(h) for h in proof],
    )


def test_frontier_folds_to_the_root() -> None:
    _, frontier = build(LEAVES[:7])
    assert _merkle.fold(h for _, h in frontier).hex() == ROOTS[6]
    assert [level for level, _ in frontier] == [2, 1, 0]


def test_node_positions_are_post_order() -> None:
    # leaf0 leaf1 n(0..1) leaf2 leaf3 n(2..3) n(0..3) leaf4
    assert [_merkle.position(lv, i) for lv, i in [(0, 0), (0, 1), (1, 0), (0, 2), (0, 3)]] == [
        0, 1, 2, 3, 4,
    ]  # fmt: skip
    assert _merkle.position(1, 1) == 5
    assert _merkle.position(2, 0) == 6
    assert _merkle.position(0, 4) == 7
    assert _merkle.nodes_before(8) == 15


def test_perfect_nodes_split_a_range_into_aligned_subtrees() -> None:
    assert _merkle.perfect_nodes(0, 7) == [(2, 0), (1, 2), (0, 6)]
    assert _merkle.perfect_nodes(4, 8) == [(2, 1)]
    assert _merkle.perfect_nodes(6, 7) == [(0, 6)]


sizes = st.integers(min_value=1, max_value=70)
LEAVES70 = [i.to_bytes(2, "big") * (1 + i % 3) for i in range(70)]  # all distinct
STORE70, _ = build(LEAVES70)


@given(data=st.data(), size=sizes)
def test_inclusion_proofs_equal_the_naive_reference_and_verify(
    data: st.DataObject, size: int
) -> None:
    index = data.draw(st.integers(0, size - 1))
    path = inclusion(STORE70, index, size)
    assert path == ref_path(index, LEAVES70[:size])
    root = ref_mth(LEAVES70[:size])
    verify_inclusion(index, size, leaf_hash(LEAVES70[index]), path, root)


@given(data=st.data(), n=sizes)
def test_consistency_proofs_equal_the_naive_reference_and_verify(
    data: st.DataObject, n: int
) -> None:
    m = data.draw(st.integers(0, n))
    proof = consistency(STORE70, m, n)
    assert proof == ref_proof(m, LEAVES70[:n])
    verify_consistency(m, n, ref_mth(LEAVES70[:m]), ref_mth(LEAVES70[:n]), proof)


# --- Negative cases (transparency-dev/merkle style) --------------------------------------
# A wrong tree size is not in the list: sizes 3 and 4 give index 0 the same path
# shape, so the size is bound by the signed checkpoint, not by the proof.


def _flip(h: bytes) -> bytes:
    return bytes([h[0] ^ 1]) + h[1:]


@given(data=st.data(), size=st.integers(2, 70))
def test_inclusion_proof_fails_when_anything_is_off(data: st.DataObject, size: int) -> None:
    index = data.draw(st.integers(0, size - 1))
    path = inclusion(STORE70, index, size)
    root = ref_mth(LEAVES70[:size])
    leaf = leaf_hash(LEAVES70[index])
    bad_cases = [
        (index, size, _flip(leaf), path, root),  # wrong leaf
        (index, size, leaf, path, _flip(root)),  # wrong root
        (index, size, leaf, [*path, leaf], root),  # extra element
        (index, 0, leaf, path, root),  # no tree
        ((index + 1) % size, size, leaf, path, root),  # index off by one
    ]
    if path:
        bad_cases.append((index, size, leaf, path[:-1], root))  # missing element
        k = data.draw(st.integers(0, len(path) - 1))
        bad_cases.append((index, size, leaf, [*path[:k], _flip(path[k]), *path[k + 1 :]], root))
    for case in bad_cases:
        with pytest.raises(ProofError):
            verify_inclusion(*case)


@given(data=st.data(), n=st.integers(2, 70))
def test_consistency_proof_fails_when_anything_is_off(data: st.DataObject, n: int) -> None:
    m = data.draw(st.integers(1, n - 1))
    proof = consistency(STORE70, m, n)
    r1, r2 = ref_mth(LEAVES70[:m]), ref_mth(LEAVES70[:n])
    k = data.draw(st.integers(0, len(proof) - 1))
    bad_cases = [
        (m, n, _flip(r1), r2, proof),
        (m, n, r1, _flip(r2), proof),
        (m, n, r1, r2, [*proof, r1]),  # extra element: must consume the second size exactly
        (m, n, r1, r2, proof[:-1]),
        (m, n, r1, r2, []),
        (m, n, r1, r2, [*proof[:k], _flip(proof[k]), *proof[k + 1 :]]),
        (n, m, r2, r1, proof),
    ]
    if m > 1:
        bad_cases.append((m - 1, n, r1, r2, proof))
    for case in bad_cases:
        with pytest.raises(ProofError):
            verify_consistency(*case)


def test_equal_sizes_need_an_empty_proof_and_equal_roots() -> None:
    r = bytes.fromhex(ROOTS[3])
    verify_consistency(4, 4, r, r, [])
    with pytest.raises(ProofError):
        verify_consistency(4, 4, r, _flip(r), [])
    with pytest.raises(ProofError):
        verify_consistency(4, 4, r, r, [r])


def test_index_outside_the_tree_is_refused() -> None:
    with pytest.raises(ProofError):
        root_from_inclusion(8, 8, leaf_hash(b""), [])
    with pytest.raises(ValueError):
        _merkle.inclusion_ranges(3, 3)


def test_node_hash_is_domain_separated_from_leaf_hash() -> None:
    a, b = leaf_hash(b"a"), leaf_hash(b"b")
    assert node_hash(a, b) != leaf_hash(a + b)
