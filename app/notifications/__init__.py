"""Outbox of emails, delivered by a job; suppressed for test accounts."""
