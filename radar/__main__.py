"""``python -m radar`` runs the command line."""

from radar.cli.main import main

main()
