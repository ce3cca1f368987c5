"""``python -m greenless`` runs the command line."""

from greenless.cli import main

main()
