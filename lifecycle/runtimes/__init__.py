"""Runtime adapters: load a variant artifact and run it. Each heavy runtime is imported only in its module."""
