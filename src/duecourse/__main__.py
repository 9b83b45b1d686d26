"""`python -m duecourse` runs the command line."""

from duecourse.cli import main

# Guarded: multiprocessing's spawn and forkserver start methods import the parent's main module in each child
# (the letters' rendering workers), which must not start the command a second time.
if __name__ == "__main__":
    main()
