"""`python -m cerniq_outreach` runs the `cerniq-outreach` command line."""

from cerniq_outreach.entrypoints.cli import PROG, main

if __name__ == "__main__":
    main(prog_name=PROG)
