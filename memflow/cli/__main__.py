"""``python -m memflow.cli``: the same as the ``memflow`` command."""

from memflow.cli import main

main(prog_name="memflow")
