"""``python -m monitor`` is the same as the ``monitor`` console script."""

from monitor.cli import main

main()
