"""The spine: what every stage shares and nothing above it — settings, errors, the shared names
(aliases, roles, tag keys, severity), the model contract and tensors, samples and evaluation, a
version's files, the database (schema, migrations, stores), runtimes, alerts, the scheduler, and the
training helpers of the reference networks. Imports nothing from the stages."""

from __future__ import annotations

__version__ = "0.1.0"
