"""``python -m stave.cli`` runs the CLI."""

from stave.cli.main import main

main()
