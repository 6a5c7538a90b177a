"""Customers' side: hosted sign-up/sign-in pages, the OAuth 2.0 authorization server, the customer's page."""
