"""The ``Idempotency-Key`` request header (IETF httpapi draft "The Idempotency-Key HTTP Header
Field"): parsed and digested in ``header``, the first answers kept in ``answers``, the rules
applied around each request in ``middleware`` (docs/IDEMPOTENCY.md)."""
