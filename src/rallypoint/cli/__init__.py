"""The ``rallypoint`` command line."""
