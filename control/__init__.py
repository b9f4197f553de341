"""The top floor: the composition root (``control.compose``: settings → adapters → stages →
processes), the adapters opened for every command (``control.services``), and the control-plane
process — leader lease, background loop, MLflow webhook receiver, admin and status API."""
