"""The `calcifer` command line: one module per command."""
