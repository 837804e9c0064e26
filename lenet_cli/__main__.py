"""`python -m lenet_cli` runs the same app as the `lenet` script."""

from lenet_cli.cli.commands import main

if __name__ == "__main__":
    main()
