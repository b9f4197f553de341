"""The retraining stage: the data a retrain learns from (reference, production, feedback), the
pipeline (distil → optimize → register as challenger), its jobs and the triggers that start it."""
