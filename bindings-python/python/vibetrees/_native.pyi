"""Type stubs of the extension module ``vibetrees._native`` (re-exported by ``vibetrees``)."""

from typing import ClassVar

__version__: str
__all__ = [
    "ALL_CODES",
    "AlreadyExistsError",
    "CacheError",
    "CancelledError",
    "CycleError",
    "GitError",
    "InternalError",
    "InvalidArgumentError",
    "InvalidGraphError",
    "IoError",
    "LockError",
    "NotFoundError",
    "ParseError",
    "ProcessError",
    "TaskFailedError",
    "TimeoutError",
    "VibetreesError",
]
ALL_CODES: list[str]

class VibetreesError(Exception):
    """Base class of every error raised by vibetrees; ``code`` is the core's stable error code."""

    code: ClassVar[str]

class InvalidArgumentError(VibetreesError): ...
class NotFoundError(VibetreesError): ...
class AlreadyExistsError(VibetreesError): ...
class InvalidGraphError(VibetreesError): ...

class CycleError(InvalidGraphError):
    cycle: str

class TaskFailedError(VibetreesError):
    task: str

class CancelledError(VibetreesError): ...
class TimeoutError(VibetreesError): ...
class IoError(VibetreesError): ...
class GitError(VibetreesError): ...
class ProcessError(VibetreesError): ...
class CacheError(VibetreesError): ...
class LockError(VibetreesError): ...
class ParseError(VibetreesError): ...
class InternalError(VibetreesError): ...
