"""The spine of the MLOps lifecycle service: settings, domain types, reference models, CLI."""

from __future__ import annotations

__version__ = "0.1.0"
