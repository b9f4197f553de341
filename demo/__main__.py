"""``python -m demo``: the guided tour."""

from demo.command import main

main()
