"""Shared plumbing only: model base and mixins, money, errors, pagination, audit, jobs."""
