"""Fixtures for detection tests: a hand-made lake, and one Spark session for all of them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ._lake import write_lake


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    """The story lake in a temporary folder."""
    return write_lake(tmp_path / "lake")


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One local Spark session shared by every test that needs it (it takes ~10 s to start)."""
    import warnings

    from bpoguard.detect.engine import spark_session

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # pyspark: pandas 3 "not fully supported"
        session = spark_session("local[2]", tmp_path_factory.mktemp("spark"))
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
