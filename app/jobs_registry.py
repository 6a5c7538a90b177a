"""Every domain's jobs module, imported so that periodic jobs are declared."""
import importlib

JOB_MODULES = [
    "app.licensing.jobs",
    "app.rbac.jobs",
    "app.notifications.jobs",
    "app.api.jobs",
    "app.sandbox.jobs",
    "app.credits.jobs",
    "app.billing.jobs",
]


def load() -> None:
    for module in JOB_MODULES:
        importlib.import_module(module)
