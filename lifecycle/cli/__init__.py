"""The ``lifecycle`` command line."""
