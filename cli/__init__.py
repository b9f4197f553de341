"""The ``lifecycle`` command line: a thin layer over the composition root and the stages."""
