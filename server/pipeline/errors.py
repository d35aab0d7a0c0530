"""What the pipeline refuses, as domain exceptions. The web layer maps each
class to one HTTP status in one place (``labelcheck.web.problems``)."""

from __future__ import annotations


class PipelineError(Exception):
    """A request the pipeline cannot act on; ``str(exc)`` says what to fix."""


class InvalidRequest(PipelineError):
    """The request's shape or values are unusable (HTTP 422)."""


class TooManyItems(PipelineError):
    """More items than one request may carry (HTTP 413)."""


class NotFound(PipelineError):
    """No such resource (HTTP 404)."""


class NotRegistered(NotFound):
    """No producer with that key id is registered (HTTP 404)."""


class RegistryConflict(PipelineError):
    """The registry already says otherwise: registered, or revoked earlier (HTTP 409)."""
