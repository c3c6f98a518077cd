"""Files mypy checks in test_typing.py; they are type-checked, never imported by pytest."""
