"""`python -m caxton`: the same as the `caxton` command."""

from caxton.shell.cli import main

main()
