from __future__ import annotations

from lifecycle.cli.app import main

main()
