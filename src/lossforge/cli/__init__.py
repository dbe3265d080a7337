"""The ``lossforge`` command line (placeholder entry point replaced by the CLI module)."""
