"""`python -m gamescale` is the `gamescale` command."""

from gamescale.framework.cli import main

main()
