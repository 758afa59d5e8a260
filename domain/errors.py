"""What the clinical domain refuses, as a small tree under ``ChartError``.

Messages name ids and fields, never values, names or text: they end up in logs, and a log is no
place for protected health information. ``api/errors.py`` maps these to HTTP status codes.
"""

from __future__ import annotations


class ChartError(Exception):
    """A domain rule refused a command."""


class InvalidEntry(ChartError, ValueError):
    """A field is missing or malformed."""


class InvalidQuantity(InvalidEntry):
    """A value is not a decimal string, or a unit is not a UCUM unit."""


class UnknownRole(InvalidEntry):
    """A role outside ``domain.users.ROLES``."""


class ConversionNotDefined(ChartError):
    """No conversion rule for this analyte and pair of units."""


class NoteAlreadySigned(ChartError):
    """A signed note is not edited or signed again, only amended."""


class NoteNotSigned(ChartError):
    """An addendum amends a signed note; a draft is edited instead."""


class AmendmentStateError(ChartError):
    """An amendment request step out of order (164.526)."""


class AppointmentStateError(ChartError):
    """An appointment step its state does not allow."""


class DoubleBooking(ChartError):
    """The provider already has an appointment overlapping this one."""


class EntryStateError(ChartError):
    """A chart entry step its state does not allow (a stopped medication, a resolved problem)."""


class UserStateError(ChartError):
    """A user step its state does not allow."""


class ThreadStateError(ChartError):
    """A message that does not belong in this thread."""


class ContentMismatch(ChartError):
    """A document's content does not match its stated hash or size."""


class DuplicateIdentifier(ChartError):
    """A patient already holds this identifier."""


class NotPermitted(ChartError):
    """The acting user may not do this to that record (e.g. a non-owner touching an owner)."""


class AccountStateError(ChartError):
    """A login account step its state does not allow (a used recovery code, no TOTP enrolled)."""
