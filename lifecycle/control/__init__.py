"""The control plane: the rollout controller, MLflow webhook receiver, admin and status API."""
