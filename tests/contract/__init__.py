"""Generators and runners of the command-line contract tests (tests/test_cli_contract.py)."""
