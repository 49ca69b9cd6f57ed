"""`python -m bot`: the `companion` command without its console script."""

from bot.cli import main

main()
