"""Domain errors: a stable code, a message a person can act on, optional details.

Services raise these; the API turns them into JSON with the given HTTP status and pages show
the message next to the field.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status = 400
    code = "invalid"

    def __init__(self, message: str, *, code: str | None = None,
                 details: dict[str, Any] | None = None, status: int | None = None) -> None:
        # A lazily translated message is rendered now, in the language of the request.
        message = str(message)
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if status:
            self.status = status
        self.details = details or {}

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class ValidationFailed(DomainError):
    """The input is well-formed but not acceptable (a missing field, a value out of range)."""

    status = 400
    code = "invalid"


class NotFound(DomainError):
    """Unknown id, or an object outside the caller's scope (we never say which)."""

    status = 404
    code = "not_found"


class PermissionDenied(DomainError):
    """The caller can see the object but their role may not do this."""

    status = 403
    code = "forbidden"


class TransitionNotAllowed(DomainError):
    """The object's state does not allow the requested change."""

    status = 409
    code = "transition_not_allowed"


class Conflict(DomainError):
    """A duplicate or a clash with what already exists."""

    status = 409
    code = "conflict"
