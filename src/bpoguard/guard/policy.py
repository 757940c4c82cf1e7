"""Policy decisions: a contract's Cedar policy set, checked at load, asked per request.

A client and its provider read and edit one Cedar policy set per contract.
:meth:`PolicySet.from_text` parses it, validates it against the shipped
schema (``policies/schema.cedarschema``) and checks that every policy has a
unique ``@id`` and a ``@reason`` that uses only known facts; a set that fails
raises :class:`PolicyError` naming the policy and its line. Compiled sets are
cached by their text, so a text is parsed and validated once per process.

:meth:`PolicySet.decide` turns :class:`~bpoguard.guard.facts.Facts` into a
:class:`PolicyDecision` whose reasons are sentences built from the
determining policies' ``@reason`` templates and the facts. Cedar ignores a
policy whose evaluation errors (so an erroring ``forbid`` would not forbid);
this module denies instead whenever Cedar reports any error.
"""

from __future__ import annotations

import dataclasses
import json
import operator
import re
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Final, Literal, TypeVar

import cedarpy
from cedarpy import pst

from bpoguard.errors import BpoguardError
from bpoguard.guard.facts import (
    CONTEXT_KEYS,
    LONG_KEYS,
    REASON_PLACEHOLDERS,
    Facts,
    ReasonWords,
    cedar_entities,
    cedar_reads_address,
    cedar_request,
    entity_slice,
    key_getters,
    long_getters,
)

__all__ = [
    "MemoPlan",
    "PolicyDecision",
    "PolicyError",
    "PolicyInfo",
    "PolicySet",
    "PolicyStore",
    "Reads",
    "default_policy_text",
    "memo_plan_of",
    "reads_of",
    "schema_text",
]

_PACKAGE: Final = "bpoguard.guard"  # policies/ is a data folder, not a package
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_CEDAR_ID = re.compile(r"\bpolicy(\d+)\b")


class PolicyError(BpoguardError):
    """A policy set does not parse, does not fit the schema, or lacks an @id or a sound @reason."""


@dataclass(frozen=True, slots=True)
class PolicyDecision:
    """The policy engine's answer: allowed or not, why in words, and which policies decided."""

    allowed: bool
    reasons: tuple[str, ...]
    policies: tuple[str, ...]  # @ids of the determining policies


@dataclass(frozen=True, slots=True)
class PolicyInfo:
    """One policy of a set, as an auditor would list it."""

    id: str
    effect: Literal["permit", "forbid"]
    reason: str | None  # the @reason template, or None
    line: int  # where the policy starts in the text, from 1


# --- shipped texts ---------------------------------------------------------


def _resource(name: str) -> str:
    return resources.files(_PACKAGE).joinpath("policies", name).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def default_policy_text() -> str:
    """Return the text of the default policy set that ships with bpoguard."""
    return _resource("default.cedar")


@lru_cache(maxsize=1)
def schema_text() -> str:
    """Return the Cedar schema (human-readable format) every policy set is validated against."""
    return _resource("schema.cedarschema")


@lru_cache(maxsize=8)
def _schema(text: str) -> cedarpy.Schema:
    try:
        return cedarpy.Schema.from_str(text)
    except ValueError as err:
        raise PolicyError(f"the Cedar schema does not parse: {err}") from None


# --- locating policies in the text ------------------------------------------


def _statement_lines(text: str) -> list[tuple[int, str]]:
    """Split policy text into statements ending in ';', each with the line it starts on.

    Cedar has no ';' outside string literals except as the end of a policy, and
    only '//' comments, so this mirrors the parser's numbering (policy0, ...).
    """
    statements: list[tuple[int, str]] = []
    line, start_line, start = 1, 0, 0
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == "\n":
            line += 1
        elif char == "/" and text.startswith("//", i):
            i = text.find("\n", i)
            if i < 0:
                break
            continue
        elif char == '"':
            i, line = _skip_string(text, i, line)
        elif char == ";":
            statements.append((start_line, text[start : i + 1]))
            start_line, start = 0, i + 1
        elif not start_line and not char.isspace():
            start_line, start = line, i
        i += 1
    if start_line:
        statements.append((start_line, text[start:]))
    return statements


def _skip_string(text: str, i: int, line: int) -> tuple[int, int]:
    """Return the index of the closing quote of the string opening at i, and the line there."""
    i += 1
    while i < len(text) and text[i] != '"':
        line += text[i] == "\n"
        i += 2 if text[i] == "\\" else 1
    return i, line


def _parse_error(text: str, err: ValueError) -> PolicyError:
    """Name the line of the first statement that does not parse on its own."""
    for line, statement in _statement_lines(text):
        try:
            cedarpy.PolicySet.from_str(statement)
        except ValueError as own:
            return PolicyError(f"policy text line {line}: does not parse: {own}")
    return PolicyError(f"policy text does not parse: {err}")


# --- loading ---------------------------------------------------------------


def _policy_infos(text: str) -> dict[str, PolicyInfo]:
    """Return the policies of a parsed text by Cedar's positional id (policy0, ...)."""
    est = json.loads(cedarpy.policies_to_json_str(text))
    if est.get("templates"):
        raise PolicyError(
            "policy templates (?principal, ?resource) are not supported; write plain policies"
        )
    lines = [line for line, _ in _statement_lines(text)]
    infos: dict[str, PolicyInfo] = {}
    seen: dict[str, int] = {}
    for cedar_id, policy in est["staticPolicies"].items():
        index = int(cedar_id.removeprefix("policy"))
        line = lines[index] if index < len(lines) else 0  # 0: not located
        annotations: Mapping[str, str] = policy.get("annotations", {})
        info = _policy_info(annotations, policy["effect"], line)
        if info.id in seen:
            raise PolicyError(
                f"policy text line {line}: @id({info.id!r}) is already used at line {seen[info.id]}"
            )
        seen[info.id] = line
        infos[cedar_id] = info
    return infos


def _policy_info(
    annotations: Mapping[str, str], effect: Literal["permit", "forbid"], line: int
) -> PolicyInfo:
    policy_id = annotations.get("id", "")
    if not policy_id:
        raise PolicyError(
            f'policy text line {line}: the policy has no @id("..."); give every policy one'
        )
    reason = annotations.get("reason")
    if reason is not None:
        unknown = sorted(set(_PLACEHOLDER.findall(reason)) - REASON_PLACEHOLDERS)
        if unknown:
            known = ", ".join(sorted(REASON_PLACEHOLDERS))
            raise PolicyError(
                f"policy {policy_id!r} (line {line}): @reason uses unknown {{{unknown[0]}}}; known: {known}"
            )
    return PolicyInfo(id=policy_id, effect=effect, reason=reason, line=line)


def _named(message: str, infos: Mapping[str, PolicyInfo]) -> str:
    """Replace Cedar's positional ids (policy3) in a message by the policies' @ids."""

    def name(match: re.Match[str]) -> str:
        info = infos.get(match.group(0))
        return info.id if info else match.group(0)

    return _CEDAR_ID.sub(name, message)


def _validate(text: str, schema: cedarpy.Schema, infos: Mapping[str, PolicyInfo]) -> None:
    result = cedarpy.validate_policies(text, schema)
    if result.validation_passed:
        return
    problems = []
    for error in result.errors:
        info = infos.get(error.policy_id)
        where = f"policy {info.id!r} (line {info.line})" if info else "policy text"
        problems.append(f"{where}: {_named(error.error, infos)}")
    raise PolicyError("policy set does not fit the schema: " + "; ".join(problems))


# --- what a policy set reads of a request ------------------------------------


@dataclass(frozen=True, slots=True)
class Reads:
    """What a policy set can read of a request, so that Cedar is given only that.

    ``context``: the context attributes any policy reads (None: the context is
    used whole, so all of them); ``resource``: whether any policy may read an
    attribute of the customer (if not, the customer entity is left out).
    """

    context: frozenset[str] | None
    resource: bool


EVERYTHING: Final = Reads(None, True)


def reads_of(policies: pst.PolicySet) -> Reads:
    """Work out from a policy set's syntax tree which request data it can read.

    Cedar reads a context attribute only as ``context.a``, ``context["a"]`` or
    ``context has a``, with the name written in the policy, so those names are
    all a policy can see. Anything else that reaches the context as a whole
    (``context == {...}``, ``(if c then context else context).a``) keeps every
    attribute. Likewise the customer entity is needed only for an attribute of
    ``resource`` or of an entity written as a literal (which could be the
    resource); any other use of ``resource`` keeps it too, to be safe.
    """
    keys: set[str] = set()
    whole: set[str] = set()  # variables used other than as the base of an attribute

    def visit(node: object) -> None:
        if isinstance(node, pst.GetAttr | pst.HasAttr):
            base = node.base
            first = node.attr if isinstance(node, pst.GetAttr) else node.attrs[0]
            if isinstance(base, pst.Var):
                if base.name == "context":
                    keys.add(first)
                elif base.name == "resource":
                    whole.add("resource")
                return
            if isinstance(base, pst.EntityLit):
                whole.add("resource")  # Customer::"812".client: that entity's data
                return
            visit(base)
            return
        if isinstance(node, pst.Var):
            whole.add(node.name)
            return
        if isinstance(node, pst.BinaryOp) and node.op in ("get_tag", "has_tag"):
            whole.add("resource")  # tags are entity data too
        if isinstance(node, Mapping):
            for value in node.values():
                visit(value)
        elif isinstance(node, tuple):
            for value in node:
                visit(value)
        elif dataclasses.is_dataclass(node) and not isinstance(node, type):
            for item in dataclasses.fields(node):
                visit(getattr(node, item.name))

    visit(policies)
    context = None if "context" in whole else frozenset(keys) & CONTEXT_KEYS
    return Reads(context, "resource" in whole)


def _reads(compiled: cedarpy.PolicySet) -> Reads:
    try:
        return reads_of(compiled.to_pst())
    except ValueError:  # syntax newer than cedarpy's tree models: give Cedar everything
        return EVERYTHING


# --- what Cedar's answer depends on: the memo's key ---------------------------

_I64_MIN: Final = -(2**63)
_I64_MAX: Final = 2**63 - 1
_COMPARE: Final[Mapping[str, Callable[[int, int], bool]]] = {
    "eq": operator.eq,
    "not_eq": operator.ne,
    "less": operator.lt,
    "less_eq": operator.le,
    "greater": operator.gt,
    "greater_eq": operator.ge,
}
_ARITHMETIC: Final[Mapping[str, Callable[[int, int], int]]] = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
}

_Term = Callable[[Mapping[str, int]], int]
_Test = Callable[[Mapping[str, int]], bool]


class _Overflow(Exception):
    """Cedar's checked 64-bit arithmetic would fail here (the policy would error)."""


def _checked(value: int) -> int:
    if _I64_MIN <= value <= _I64_MAX:
        return value
    raise _Overflow


def _term(node: object) -> tuple[_Term, frozenset[str]] | None:
    """Compile an arithmetic of Long literals and Long context attributes; None if it is not one.

    Evaluated as Cedar does: left to right, every intermediate result checked.
    """
    if isinstance(node, pst.LongLit):
        constant = node.value
        return (lambda _: constant), frozenset()
    if (
        isinstance(node, pst.GetAttr)
        and isinstance(node.base, pst.Var)
        and node.base.name == "context"
        and node.attr in LONG_KEYS
    ):
        name = node.attr
        return (lambda values: values[name]), frozenset((name,))
    if isinstance(node, pst.UnaryOp) and node.op == "neg":
        inner = _term(node.arg)
        if inner is None:
            return None
        arg = inner[0]
        return (lambda values: _checked(-arg(values))), inner[1]
    if isinstance(node, pst.BinaryOp) and node.op in _ARITHMETIC:
        left, right = _term(node.left), _term(node.right)
        if left is None or right is None:
            return None
        combine, lhs, rhs = _ARITHMETIC[node.op], left[0], right[0]
        return (lambda values: _checked(combine(lhs(values), rhs(values)))), left[1] | right[1]
    return None


def _test(compare: Callable[[int, int], bool], lhs: _Term, rhs: _Term) -> _Test:
    return lambda values: compare(lhs(values), rhs(values))


@dataclass(frozen=True, slots=True)
class MemoPlan:
    """What of a request Cedar's answer can depend on, worked out from a policy set's tree.

    ``ids``: whether the person's and the customer's ids matter (a policy names
    an entity, or uses ``principal``/``resource`` other than for an attribute);
    ``plain``: context attributes keyed by their value; ``longs`` and ``tests``:
    the ``Long`` attributes that occur only inside comparisons of sums,
    differences and products of ``Long`` attributes and literals, and those
    comparisons, which key the memo by their truth values instead of the numbers
    (``tested``: every attribute they evaluate, some perhaps also in ``plain``).
    """

    ids: bool
    plain: tuple[str, ...]
    longs: tuple[str, ...]
    tests: tuple[_Test, ...]
    tested: tuple[str, ...] = ()  # the Long attributes the tests evaluate

    @property
    def comparisons(self) -> int:
        """How many comparisons are evaluated outside Cedar to key the memo."""
        return len(self.tests)


def _ids_matter(policies: pst.PolicySet) -> bool:
    if any(
        uid.type.namespace or uid.type.basename != "Action" for uid in pst.entity_uids(policies)
    ):
        return True  # Staff::"x", Customer::"812", in the scope or the conditions
    found = False

    def visit(node: object) -> None:
        nonlocal found
        if found:
            return
        if isinstance(node, pst.GetAttr | pst.HasAttr) and isinstance(node.base, pst.Var):
            return  # principal.role: the attribute's value is keyed, not the id
        if isinstance(node, pst.Var) and node.name in ("principal", "resource"):
            found = True
            return
        _visit_children(node, visit)

    visit(policies)
    return found


def _visit_children(node: object, visit: Callable[[object], None]) -> None:
    if isinstance(node, Mapping):
        for value in node.values():
            visit(value)
    elif isinstance(node, tuple):
        for value in node:
            visit(value)
    elif dataclasses.is_dataclass(node) and not isinstance(node, type):
        for item in dataclasses.fields(node):
            visit(getattr(node, item.name))


def memo_plan_of(policies: pst.PolicySet, reads: Reads) -> MemoPlan:
    """Work out from a policy set's syntax tree what key remembers Cedar's answers soundly.

    A ``Long`` context attribute is keyed by the outcomes of the comparisons it
    occurs in when every occurrence of it is inside a comparison (``<``, ``<=``,
    ``>``, ``>=``, ``==``, ``!=``) of two arithmetic terms built from ``Long``
    literals, ``Long`` context attributes, ``+``, ``-`` and ``*``: the policies
    then see its value only through those truth values. Any other occurrence
    (a set, an ``if`` branch, a ``has`` test, an extension call...) keys it by
    its value, as every other attribute is.
    """
    if reads.context is None:  # the context used whole: key on all of it
        return MemoPlan(_ids_matter(policies), tuple(sorted(CONTEXT_KEYS)), (), ())
    tests: dict[pst.BinaryOp, _Test] = {}
    tested: set[str] = set()
    elsewhere: set[str] = set()

    def visit(node: object) -> None:
        if isinstance(node, pst.BinaryOp) and node.op in _COMPARE:
            left, right = _term(node.left), _term(node.right)
            if left is not None and right is not None and (left[1] | right[1]):
                if node not in tests:
                    tests[node] = _test(_COMPARE[node.op], left[0], right[0])
                tested.update(left[1] | right[1])
                return
        if isinstance(node, pst.GetAttr | pst.HasAttr) and node.base == pst.Var("context"):
            first = node.attr if isinstance(node, pst.GetAttr) else node.attrs[0]
            if first in LONG_KEYS:
                elsewhere.add(first)
            return
        _visit_children(node, visit)

    visit(policies)
    longs = (tested - elsewhere) & reads.context
    plain = tuple(sorted(reads.context - longs))
    return MemoPlan(
        _ids_matter(policies),
        plain,
        tuple(sorted(longs)),
        tuple(tests.values()),
        tuple(sorted(tested)),
    )


def _memo_plan(compiled: cedarpy.PolicySet, reads: Reads) -> MemoPlan:
    try:
        return memo_plan_of(compiled.to_pst(), reads)
    except ValueError:  # syntax newer than cedarpy's tree models: key on everything
        return MemoPlan(True, tuple(sorted(CONTEXT_KEYS)), (), ())


@lru_cache(maxsize=256)
def _compile(text: str) -> PolicySet:
    try:
        compiled = cedarpy.PolicySet.from_str(text)
    except ValueError as err:
        raise _parse_error(text, err) from None
    infos = _policy_infos(text)
    _validate(text, _schema(schema_text()), infos)
    return PolicySet(text, compiled, infos)


# --- deciding --------------------------------------------------------------

_MEMO_SIZE = 16_384  # Cedar answers kept per policy set
_K = TypeVar("_K", bound=Hashable)
_V = TypeVar("_V")


@dataclass(frozen=True, slots=True)
class _Answer:
    """What Cedar said: allowed or not, the determining policies, any evaluation errors."""

    allowed: bool
    reasons: tuple[str, ...]
    errors: tuple[str, ...]

    @classmethod
    def of(cls, result: cedarpy.AuthzResult) -> _Answer:
        diagnostics = result.diagnostics
        return cls(result.allowed, tuple(diagnostics.reasons), tuple(diagnostics.errors))


def _render(template: str, values: Mapping[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


@lru_cache(maxsize=1024)
def _pieces(template: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A template's literal text and its placeholders' names, split once (literals one more)."""
    parts = _PLACEHOLDER.split(template)
    return tuple(parts[::2]), tuple(parts[1::2])


def _fill(pieces: tuple[tuple[str, ...], tuple[str, ...]], values: Mapping[str, str]) -> str:
    """:func:`_render` of a template split by :func:`_pieces`: the same text."""
    literals, names = pieces
    out = [literals[0]]
    for name, literal in zip(names, literals[1:], strict=True):
        out += (values[name], literal)
    return "".join(out)


class PolicySet:
    """A contract's policies, parsed and validated once; decides requests from facts."""

    def __init__(
        self,
        text: str,
        compiled: cedarpy.PolicySet,
        infos: Mapping[str, PolicyInfo],
        memo_size: int = _MEMO_SIZE,
    ) -> None:
        """Wrap an already validated set; use :meth:`from_text` or :meth:`load_default`.

        ``memo_size``: how many of Cedar's answers, and of decisions, to remember
        (least recently used first out); 0 asks Cedar every time.
        """
        self.text = text
        self._compiled = compiled
        self._infos = dict(infos)
        self._order = {cedar_id: int(cedar_id.removeprefix("policy")) for cedar_id in infos}
        # What the policies can read: Cedar reads every context attribute it is
        # given (a set of five names about 10 µs, an address 12 µs), so it is
        # given only these, and the customer entity only if an attribute of it.
        self.reads = _reads(compiled)
        self.memo_plan = _memo_plan(compiled, self.reads)
        plan = self.memo_plan
        self._plain = key_getters(plan.plain)
        self._address_keyed = "source_ip" in plan.plain
        self._long_names = plan.tested
        self._longs = long_getters(plan.tested)
        self._tests = plan.tests
        self._memo_size = memo_size
        self._memo: OrderedDict[Hashable, _Answer] = OrderedDict()
        self._decided: dict[Facts, PolicyDecision] = {}

    @classmethod
    def from_text(cls, text: str) -> PolicySet:
        """Parse policy text and validate it against the shipped schema; cached by text."""
        return _compile(text)

    @classmethod
    def load_default(cls) -> PolicySet:
        """Return the default policy set that ships with bpoguard."""
        return cls.from_text(default_policy_text())

    @property
    def policies(self) -> tuple[PolicyInfo, ...]:
        """The set's policies in the order of the text."""
        return tuple(self._infos[k] for k in sorted(self._infos, key=self._order.__getitem__))

    def without_memo(self) -> PolicySet:
        """The same policies, asking Cedar on every decision (to check the memo against)."""
        return PolicySet(self.text, self._compiled, self._infos, memo_size=0)

    def clear_memo(self) -> None:
        """Forget every remembered answer and decision."""
        self._memo.clear()
        self._decided.clear()

    def memo_key(self, facts: Facts) -> Hashable | None:
        """Return what Cedar's answer to these facts depends on; None: not to be remembered.

        The action, the person's attributes (and the customer's, if a policy
        reads one), the ids only where a policy names an entity, the values of
        the context attributes the policies read, and for the ``Long`` ones that
        occur only in comparisons the comparisons' truth values (see
        :func:`memo_plan_of`). None where a comparison's arithmetic would
        overflow, a number is not a 64-bit integer, or Cedar cannot read the
        address: Cedar then reports an error and is asked every time.
        """
        values: dict[str, int] = {}
        for name, get in zip(self._long_names, self._longs, strict=True):
            value = get(facts)
            if not _I64_MIN <= value <= _I64_MAX:
                return None
            values[name] = value
        try:
            outcomes = tuple([test(values) for test in self._tests])
        except _Overflow:
            return None
        if not self._address_keyed and not cedar_reads_address(facts.source_ip):
            return None
        staff = (facts.role, facts.site_id, facts.status)
        ids = (facts.staff_id, facts.customer_id) if self.memo_plan.ids else ()
        customer = (facts.client_id, facts.is_canary) if self.reads.resource else ()
        plain = tuple([get(facts) for get in self._plain])
        return (facts.action, staff, ids, customer, plain, outcomes)

    def decide(self, facts: Facts) -> PolicyDecision:
        """Decide one request; deny with the reasons of every forbid that applies.

        A decision is a pure function of the policies and the facts (the Cedar
        request, the entity slice and the reasons' words are all built from the
        facts), so it is memoised on the facts themselves: an agent asking again
        about the customer on the call, with nothing changed, costs one hash.
        Behind that, Cedar's answer is memoised on what it depends on
        (:meth:`memo_key`): a first view of a new customer, with budget counts
        never seen before, is answered from memory when the same comparisons
        come out the same. The reasons are written afresh from each request's
        own facts, so they name its own numbers. An answer with an error is not
        remembered (its message may name the numbers of the request).
        """
        size = self._memo_size
        decided = self._decided.get(facts) if size else None
        if decided is not None:
            return decided  # not moved to the end: a repeat costs one hash, oldest out first
        key = self.memo_key(facts) if size else None
        answer = self._memo.get(key) if key is not None else None
        if answer is None:
            reads = self.reads
            request = cedar_request(facts, reads.context)
            entities = cedar_entities(facts, reads.resource)
            answer = _Answer.of(cedarpy.is_authorized(request, self._compiled, entities))
            if key is not None and not answer.errors:
                _remember(self._memo, key, answer, size)
        else:
            self._memo.move_to_end(key)
        decided = self._explain(answer, facts)
        if size:
            self._decided[facts] = decided
            if len(self._decided) > size:
                del self._decided[next(iter(self._decided))]  # the oldest
        return decided

    def decide_many(self, many: Sequence[Facts]) -> list[PolicyDecision]:
        """Decide several requests in Cedar batches; the same answers as :meth:`decide` one by one."""
        decisions: list[PolicyDecision] = []
        for chunk in _consistent_chunks(many):
            requests = [cedar_request(facts, self.reads.context) for facts in chunk]
            results = cedarpy.is_authorized_batch(requests, self._compiled, _entities_json(chunk))
            decisions.extend(
                self._explain(_Answer.of(r), f) for r, f in zip(results, chunk, strict=True)
            )
        return decisions

    def _explain(self, answer: _Answer, facts: Facts) -> PolicyDecision:
        if answer.errors:
            return self._failed(answer.errors, answer.reasons, facts)
        ids = sorted(answer.reasons, key=self._order.__getitem__)
        if not ids:
            return PolicyDecision(
                False, (f"denied: no policy allows {facts.action.value} here",), ()
            )
        values = ReasonWords(facts)
        allowed = answer.allowed
        reasons = tuple(self._reason(cedar_id, allowed, values) for cedar_id in ids)
        return PolicyDecision(allowed, reasons, tuple(self._infos[i].id for i in ids))

    def _reason(self, cedar_id: str, allowed: bool, values: Mapping[str, str]) -> str:
        info = self._infos[cedar_id]
        text = _fill(_pieces(info.reason), values) if info.reason else f"policy {info.id}"
        return f"{'allowed' if allowed else 'denied'}: {text}"

    def _first_named(self, message: str) -> int:
        """The place in the text of the first policy an error message names (-1: none)."""
        for match in _CEDAR_ID.finditer(message):
            if match.group(0) in self._order:
                return self._order[match.group(0)]
        return -1

    def _failed(self, errors: Iterable[str], fired: Iterable[str], facts: Facts) -> PolicyDecision:
        # Fail closed: Cedar skips an erroring policy, which for a forbid means not forbidding.
        values = ReasonWords(facts)
        # In the order of the text: Cedar reports fired policies and errors in no fixed order.
        order = self._order
        forbids = sorted(
            (i for i in fired if self._infos[i].effect == "forbid"), key=order.__getitem__
        )
        reasons = [self._reason(i, False, values) for i in forbids]
        errors = sorted(errors, key=lambda e: (self._first_named(e), e))
        reasons += [
            f"denied: the policy could not be evaluated: {_named(e, self._infos)}" for e in errors
        ]
        erring = [
            m.group(0) for e in errors for m in _CEDAR_ID.finditer(e) if m.group(0) in self._infos
        ]
        ids = dict.fromkeys(self._infos[i].id for i in [*forbids, *erring])
        return PolicyDecision(False, tuple(reasons), tuple(ids))


def _remember(memo: OrderedDict[_K, _V], key: _K, value: _V, size: int) -> None:
    memo[key] = value
    if len(memo) > size:
        memo.popitem(last=False)  # the least recently used


# --- batches ---------------------------------------------------------------


def _consistent_chunks(many: Sequence[Facts]) -> list[list[Facts]]:
    """Split requests so no chunk holds one entity id with two different sets of attributes."""
    chunks: list[list[Facts]] = []
    current: list[Facts] = []
    seen: dict[tuple[str, str], str] = {}
    for facts in many:
        staff, customer = entity_slice(facts)
        keys = {("Staff", facts.staff_id): staff, ("Customer", str(facts.customer_id)): customer}
        if any(seen.get(k, v) != v for k, v in keys.items()):
            chunks.append(current)
            current, seen = [], {}
        current.append(facts)
        seen.update(keys)
    if current:
        chunks.append(current)
    return chunks


def _entities_json(chunk: Iterable[Facts]) -> str:
    distinct = dict.fromkeys(text for facts in chunk for text in entity_slice(facts))
    return "[" + ",".join(distinct) + "]"


# --- one set per contract --------------------------------------------------


class PolicyStore:
    """The policy set of each contract; contracts without their own text use the default.

    A contract whose stored text no longer loads (say, after a schema change)
    is not given the default: every request under it is denied, saying why.
    """

    def __init__(self, default: PolicySet | None = None) -> None:
        """Start with no contract-specific sets; ``default`` is the shipped set unless given."""
        self._default = default or PolicySet.load_default()
        self._sets: dict[str, PolicySet] = {}
        self._broken: dict[str, str] = {}

    @property
    def default(self) -> PolicySet:
        """The set used for contracts without their own text."""
        return self._default

    def put(self, contract_id: str, text: str) -> PolicySet:
        """Validate a contract's policy text and use it from now on; raise PolicyError if unsound."""
        policy_set = PolicySet.from_text(text)
        self._sets[contract_id] = policy_set
        self._broken.pop(contract_id, None)
        return policy_set

    def replace_all(self, texts: Mapping[str, str]) -> dict[str, str]:
        """Use exactly these contract texts from now on; returns the problems of any that fail.

        A contract whose text fails is fenced: its requests are denied until fixed.
        """
        sets: dict[str, PolicySet] = {}
        broken: dict[str, str] = {}
        for contract_id, text in texts.items():
            try:
                sets[contract_id] = PolicySet.from_text(text)
            except PolicyError as err:
                broken[contract_id] = str(err)
        self._sets, self._broken = sets, broken
        return dict(broken)

    def remove(self, contract_id: str) -> None:
        """Return a contract to the default set."""
        self._sets.pop(contract_id, None)
        self._broken.pop(contract_id, None)

    def get(self, contract_id: str) -> PolicySet:
        """Return the contract's own set, or the default; PolicyError if its own does not load."""
        if contract_id in self._broken:
            raise PolicyError(f"contract {contract_id}: {self._broken[contract_id]}")
        return self._sets.get(contract_id, self._default)

    def decide(self, contract_id: str, facts: Facts) -> PolicyDecision:
        """Decide a request under the contract's policy set (deny if that set does not load)."""
        if contract_id in self._broken:
            reason = f"denied: the policy set of contract {contract_id} does not load; fix it"
            return PolicyDecision(False, (reason,), ())
        return self.get(contract_id).decide(facts)
