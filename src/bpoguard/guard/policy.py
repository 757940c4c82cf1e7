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
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Final, Literal

import cedarpy
from cedarpy import pst

from bpoguard.errors import BpoguardError
from bpoguard.guard.facts import (
    CONTEXT_KEYS,
    REASON_PLACEHOLDERS,
    Facts,
    ReasonWords,
    cedar_entities,
    cedar_request,
    entity_slice,
)

__all__ = [
    "PolicyDecision",
    "PolicyError",
    "PolicyInfo",
    "PolicySet",
    "PolicyStore",
    "Reads",
    "default_policy_text",
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


class PolicySet:
    """A contract's policies, parsed and validated once; decides requests from facts."""

    def __init__(
        self, text: str, compiled: cedarpy.PolicySet, infos: Mapping[str, PolicyInfo]
    ) -> None:
        """Wrap an already validated set; use :meth:`from_text` or :meth:`load_default`."""
        self.text = text
        self._compiled = compiled
        self._infos = dict(infos)
        self._order = {cedar_id: int(cedar_id.removeprefix("policy")) for cedar_id in infos}
        # What the policies can read: Cedar reads every context attribute it is
        # given (a set of five names about 10 µs, an address 12 µs), so it is
        # given only these, and the customer entity only if an attribute of it.
        self.reads = _reads(compiled)
        self._memo: dict[tuple[object, ...], _Answer] = {}
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

    def decide(self, facts: Facts) -> PolicyDecision:
        """Decide one request; deny with the reasons of every forbid that applies.

        A decision is a pure function of the policies and the facts (the Cedar
        request, the entity slice and the reasons' words are all built from the
        facts), so it is memoised on the facts themselves: an agent asking again
        about the customer on the call, with nothing changed, costs one hash.
        Behind that, Cedar's answer is memoised on exactly its inputs (policy
        set, request, entity slice), so requests that differ only in words of
        the reasons (another call with the same customer) are not evaluated
        again either; their reasons are written afresh from their own facts.
        """
        decided = self._decided.get(facts)
        if decided is not None:
            return decided
        reads = self.reads
        request = cedar_request(facts, reads.context)
        key = (facts.staff_id, facts.action.value, facts.customer_id, request["context"],
               *entity_slice(facts))  # fmt: skip
        answer = self._memo.get(key)
        if answer is None:
            entities = cedar_entities(facts, reads.resource)
            answer = _Answer.of(cedarpy.is_authorized(request, self._compiled, entities))
            if len(self._memo) >= _MEMO_SIZE:
                self._memo.clear()  # bounded; a fresh start costs one evaluation each
            self._memo[key] = answer
        decided = self._explain(answer, facts)
        if len(self._decided) >= _MEMO_SIZE:
            self._decided.clear()
        self._decided[facts] = decided
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
        text = _render(info.reason, values) if info.reason else f"policy {info.id}"
        return f"{'allowed' if allowed else 'denied'}: {text}"

    def _failed(self, errors: Iterable[str], fired: Iterable[str], facts: Facts) -> PolicyDecision:
        # Fail closed: Cedar skips an erroring policy, which for a forbid means not forbidding.
        values = ReasonWords(facts)
        forbids = [i for i in fired if self._infos[i].effect == "forbid"]
        reasons = [self._reason(i, False, values) for i in forbids]
        errors = list(errors)
        reasons += [
            f"denied: the policy could not be evaluated: {_named(e, self._infos)}" for e in errors
        ]
        erring = [
            m.group(0) for e in errors for m in _CEDAR_ID.finditer(e) if m.group(0) in self._infos
        ]
        ids = dict.fromkeys(self._infos[i].id for i in [*forbids, *erring])
        return PolicyDecision(False, tuple(reasons), tuple(ids))


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
