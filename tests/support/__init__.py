"""Helpers the test suites share; fixtures live in conftest.py files and import their logic here."""
