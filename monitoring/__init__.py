"""The monitoring stage: drift detectors (pure), the drift monitor that checks what was served
against the reference, its history, and the Evidently report attached to each check's MLflow run."""
