"""``python -m bizstream`` is the ``bizstream`` command."""

from bizstream.cli import main

main()
