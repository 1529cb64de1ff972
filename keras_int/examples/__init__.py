"""Example trainings: ``python -m keras_int.examples.train --help``."""
