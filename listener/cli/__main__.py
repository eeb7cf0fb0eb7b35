"""`python -m listener.cli`: the `listener` command."""

from listener.cli import main

main()
