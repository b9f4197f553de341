"""Drift detection, alerts and scheduled monitor jobs (see the monitoring issue)."""
