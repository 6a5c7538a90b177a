"""Test data: test accounts, API keys (live/sandbox/dev), OAuth clients, test-traffic marking."""
