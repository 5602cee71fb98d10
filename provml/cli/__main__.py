"""``python -m provml.cli``: the ``provml`` command."""

from provml.cli import main

if __name__ == "__main__":  # pragma: no cover
    main()
