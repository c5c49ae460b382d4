"""The ``stave`` command line: a thin personality over the library."""
