"""`python -m duecourse` runs the command line."""

from duecourse.cli import main

main()
