"""Rollout policy as plain Python: the state machine, its settings and the per-step analysis.

Nothing here imports a web framework, MLflow or the database; the control plane drives it.
"""
