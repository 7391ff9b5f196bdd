"""The model layer: tables and the domain services that enforce every rule.

Never imports textual, rich, tui or screens (tests/models/test_import_contract.py).
"""
