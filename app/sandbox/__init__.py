"""Test data: test accounts, API keys, test-traffic marking, production statistics, cleanup."""
