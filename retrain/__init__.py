"""Distillation trainer and the retrain pipeline (see the retraining issue)."""
