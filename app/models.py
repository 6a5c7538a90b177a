"""Imports every domain's tables so that metadata (and Alembic) sees the whole schema.

It also gives every foreign-key column an index unless one already leads with it: the
test-data cleanup deletes through every foreign key, and an unindexed one turns each
batch into a sequential scan that holds locks for seconds.
"""
from sqlalchemy import Index

from app.auth.models import RecoveryCode  # noqa: F401
from app.core.audit import AuditEntry  # noqa: F401
from app.core.jobs import JobRecord  # noqa: F401
from app.ops.models import SchedulerLease  # noqa: F401
from app.rbac.models import Permission, PermissionOverride, Role, RoleAssignment, RoleChangeLog  # noqa: F401
from app.sandbox.cleanup_models import CleanupRun  # noqa: F401
from app.sandbox.clock_models import TestClock  # noqa: F401
from app.users.models import User  # noqa: F401
from app.accounts.models import AuthorizationCode, Consent  # noqa: F401
from app.notifications.models import OutboxMessage  # noqa: F401
from app.coupons.models import Campaign, Coupon, CouponUserUse, FraudDetection, Redemption, ValidationRule  # noqa: F401
from app.api.models import ApiKey, ApiRequestDay, IdempotencyRecord, OAuthClient, OAuthToken  # noqa: F401
from app.licensing.models import Activation, ActivationEvent, AppVersion, License, LicenseUpgrade  # noqa: F401
from app.credits.models import (CreditAllocation, CreditBalance, CreditDailyTotal, CreditDeduction,  # noqa: F401
                                CreditGrantRequest, CreditUsageDaily, MarginAudit, MarginConfig, ModelDailyTotal,
                                ModelPrice, PricingState, Provider, SummaryRun, TokenUsage, TokenUsageDaily, VendorKey)
from app.billing.models import (CreditPack, CreditPackPurchase, DunningAttempt, Invoice, InvoiceLine,  # noqa: F401
                                PaymentTransaction, PeriodAllocation, ProrationEvent, RefundRequest,
                                RevenueDailyTotal, StripeEvent, Subscription, SubscriptionTier)


def _index_foreign_keys(metadata) -> None:
    for table in metadata.tables.values():
        leading = {next(iter(ix.columns)).name for ix in table.indexes if ix.columns}
        leading |= {next(iter(c.columns)).name for c in table.constraints if getattr(c, "columns", None)
                    and c.__class__.__name__ in ("UniqueConstraint", "PrimaryKeyConstraint")}
        for fk in table.foreign_keys:
            column = fk.parent
            if column.name not in leading:
                Index(None, column)
                leading.add(column.name)


_index_foreign_keys(User.metadata)
