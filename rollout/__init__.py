"""The rollout stage. Decision logic as plain Python — policy (settings), the state machine and
the per-step analysis — which imports no web framework, MLflow or database; the store and window
reader persist and read it (SQLAlchemy); the controller carries decisions out on the registry."""
