"""detect: insider-risk features, detectors, risk scores and explained alerts.

Features are Ibis expressions over the event lake, run by DuckDB (default) or
Spark; detectors turn them into alerts; risk ranks people. See docs/detect.md.
"""

from bpoguard.detect.engine import DuckDBEngine, Engine, SparkEngine, open_engine
from bpoguard.detect.features import FEATURES, FeatureSpec

__all__ = ["FEATURES", "DuckDBEngine", "Engine", "FeatureSpec", "SparkEngine", "open_engine"]
