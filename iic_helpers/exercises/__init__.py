"""Automatic answer checks for the notebooks' coding exercises.

One submodule per notebook topic (e.g. ``iic_helpers.exercises.residuals``); each check
runs a student's function on held-out inputs against the package's implementation and
prints ✓ or a message pointing at the likely mistake.
"""
