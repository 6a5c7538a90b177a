"""User accounts: customers and staff alike."""
