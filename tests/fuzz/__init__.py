"""Fuzzing suite (issue 6): hostile inputs for every public entry point of minifw."""
