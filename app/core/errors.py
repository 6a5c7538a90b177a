"""Domain errors: services raise them with a stable code; screens and the API render them."""
from __future__ import annotations


class DomainError(Exception):
    status = 422
    type = "invalid_request_error"

    def __init__(self, code: str, message: str, field: str | None = None, status: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        if status is not None:
            self.status = status


class NotFound(DomainError):
    status = 404

    def __init__(self, what: str, field: str | None = None):
        super().__init__("resource_missing", f"No such {what}.", field)


class PermissionDenied(DomainError):
    status = 403
    type = "permission_error"

    def __init__(self, message: str, code: str = "permission_denied", permission: str | None = None):
        super().__init__(code, message)
        self.permission = permission


class Conflict(DomainError):
    status = 409
