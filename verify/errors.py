"""Every way a verification can fail. Messages name the position and both values."""


class VerificationError(Exception):
    """The bytes do not prove what they claim. Subclasses say which rule failed."""


class MalformedInput(VerificationError):
    """Input that cannot be parsed into the shape the format requires."""


class NotCanonical(MalformedInput):
    """Bytes that decode but are not the one canonical encoding of their value."""


class HashMismatch(VerificationError):
    """A recomputed hash differs from the recorded one."""


class ChainBroken(VerificationError):
    """A subject's chain of leaves, or the log's positions, has a gap, fork or reordering."""


class ProofInvalid(VerificationError):
    """An inclusion, consistency or completeness proof does not reproduce its root."""


class SignatureInvalid(VerificationError):
    """A signature does not verify under the key it names."""


class UnknownKey(VerificationError):
    """A signature names a key that the key history does not hold or does not allow."""
