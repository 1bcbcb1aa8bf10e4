"""`python -m adapters.cli`: the same as the `whoknows` command."""

from adapters.cli import main

main()
