"""Example workflows instrumented with capture_lib (``provml serve --demo`` runs
:mod:`examples.sklearn_demo`)."""
