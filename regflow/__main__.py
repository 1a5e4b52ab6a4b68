"""``python -m regflow``: the ``regflow`` command line."""

from regflow.cli import main

if __name__ == "__main__":
    main(prog_name="regflow")
