"""FHIR R4 resources for the EHI export (docs/EHI_EXPORT.md), one module per resource family.

Every function here is pure: it takes decoded ledger events or aggregate state and returns plain
dicts in FHIR JSON shape. Nothing here reads the store or writes a file; ``projections/ehi_export``
does that. Decimal quantities travel as :class:`projections.fhir.ndjson.Number`, never as floats.
"""
