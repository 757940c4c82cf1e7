"""The normalised security-event schema and its Parquet event lake."""

from bpoguard.events.lake import LakeWriter, dataset
from bpoguard.events.schema import SCHEMA, Action, Event, Outcome

__all__ = ["SCHEMA", "Action", "Event", "LakeWriter", "Outcome", "dataset"]
