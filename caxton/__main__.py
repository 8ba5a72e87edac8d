"""`python -m caxton`: the same as the `caxton` command."""

from caxton.cli import main

main()
