"""The API's request and response bodies, as the OpenAPI document shows them."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

from bpoguard.fields import FieldType
from bpoguard.store.models import Channel


class _Body(BaseModel):
    # Unknown keys are refused: a typo must not silently drop a field.
    model_config = ConfigDict(extra="forbid")


class InteractionIn(_Body):
    """A call or ticket the telephony or CRM system has just opened."""

    id: int = Field(gt=0, lt=2**63, description="The CRM's own interaction id.")
    contract_id: str = Field(min_length=1, max_length=64)
    staff_id: str = Field(min_length=1, max_length=32, description="The agent taking it.")
    customer_id: int = Field(gt=0, lt=2**63)
    purpose: str = Field(min_length=1, max_length=64, description="One of the contract's purposes.")
    channel: Channel = Channel.CALL


class InteractionOut(BaseModel):
    """An interaction as the guard holds it; no customer values."""

    id: int
    contract_id: str
    staff_id: str
    customer_id: int
    purpose: str
    channel: Channel
    opened_at: dt.datetime
    closed_at: dt.datetime | None = None
    fields: list[FieldType] = Field(default_factory=list, description="What its purpose shows.")
    revealable: list[FieldType] = Field(
        default_factory=list, description="What its purpose lets the agent reveal."
    )


class ViewIn(_Body):
    """Which fields of the customer to see, masked, in which interaction."""

    interaction_id: int = Field(gt=0, lt=2**63)
    fields: list[FieldType] | None = Field(
        default=None,
        min_length=1,
        max_length=len(FieldType),
        description="Fields wanted; the interaction's purpose's fields when left out.",
    )


class RevealIn(_Body):
    """One field in the clear, with the reason the agent gives."""

    interaction_id: int = Field(gt=0, lt=2**63)
    field: FieldType
    reason: str = Field(min_length=3, max_length=500, description="Why the agent needs it.")


class VerifyIn(_Body):
    """What the caller said; checked against the record, never returned."""

    interaction_id: int = Field(gt=0, lt=2**63)
    field: FieldType
    answer: str = Field(min_length=1, max_length=200)


class Decided(BaseModel):
    """The guard's decision: allowed or not, the reasons, its ledger entry."""

    allowed: bool
    reasons: list[str]
    ledger_index: int | None = None


class SliceOut(Decided):
    """The masked slice of a customer."""

    customer_id: int
    interaction_id: int
    values: dict[FieldType, str] = Field(description="Masked values, by field.")


class RevealOut(Decided):
    """One field in the clear: show it to the agent, never store or log it."""

    customer_id: int
    interaction_id: int
    field: FieldType
    value: str | None


class VerifyOut(Decided):
    """Whether the caller's answer matched, and how many tries are left in the interaction."""

    customer_id: int
    interaction_id: int
    field: FieldType
    match: bool
    attempts_left: int


class Problem(BaseModel):
    """An error: a code, one line for a person, and the guard's reasons for a denial."""

    error: str
    message: str
    reasons: list[str] = Field(default_factory=list)
    ledger_index: int | None = None


class Health(BaseModel):
    """The server is up and its database answers."""

    status: str
    schema_revision: str | None


class SearchIn(_Body):
    """Find a client's customer by an exact value a caller quotes (never logged)."""

    interaction_id: int = Field(gt=0, lt=2**63, description="The open call the search is for.")
    field: FieldType = Field(description="phone, account_number, card_number or email.")
    value: str = Field(min_length=1, max_length=200)
    client_id: str | None = Field(
        default=None, max_length=64, description="The interaction's client when left out."
    )
    fields: list[FieldType] | None = Field(
        default=None,
        min_length=1,
        max_length=len(FieldType),
        description="Fields shown in each row; the interaction's purpose's when left out.",
    )


class SearchRow(BaseModel):
    """One customer found, masked."""

    customer_id: int
    values: dict[FieldType, str]


class SearchOut(Decided):
    """The masked rows found (at most a handful), and whether more matched."""

    rows: list[SearchRow]
    truncated: bool
