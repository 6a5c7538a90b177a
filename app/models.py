"""Imports every domain's tables so that metadata (and Alembic) sees the whole schema."""
from app.auth.models import RecoveryCode  # noqa: F401
from app.core.audit import AuditEntry  # noqa: F401
from app.core.jobs import JobRecord  # noqa: F401
from app.rbac.models import Permission, PermissionOverride, Role, RoleAssignment, RoleChangeLog  # noqa: F401
from app.users.models import User  # noqa: F401
from app.notifications.models import OutboxMessage  # noqa: F401
from app.coupons.models import Campaign, Coupon, CouponUserUse, FraudDetection, Redemption, ValidationRule  # noqa: F401
from app.testdata.models import ApiKey, ApiRequestDay, IdempotencyRecord, OAuthClient, OAuthToken  # noqa: F401
from app.credits.models import (CreditAllocation, CreditBalance, CreditDeduction, CreditGrantRequest,  # noqa: F401
                                CreditUsageDaily, MarginAudit, MarginConfig, ModelPrice, PricingState, Provider,
                                SummaryRun, TokenUsage, TokenUsageDaily, VendorKey)
from app.billing.models import (CreditPack, CreditPackPurchase, DunningAttempt, Invoice, InvoiceLine,  # noqa: F401
                                PaymentTransaction, PeriodAllocation, ProrationEvent, RefundRequest, StripeEvent,
                                Subscription, SubscriptionTier)
