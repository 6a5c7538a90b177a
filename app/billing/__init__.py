"""Billing: tiers, subscriptions, proration, invoices, payments (Stripe), dunning, credit packs."""
