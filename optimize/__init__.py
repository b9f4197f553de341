"""Optimization runs: recipes turn a registered version into compressed variants, which are
measured against the parent in the same process, gated, and registered with lineage."""
