"""Guard: serves agents narrow, masked slices of customer records under the contract's policies."""
