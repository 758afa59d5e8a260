"""Reading a Bulk Data kick-off (api/bulk_kickoff.py), the settings behind its URLs, and the rules
that tie a manifest's URLs to the export's files (projections/ehi_export.py)."""

from __future__ import annotations

from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.bulk_kickoff import KickOffRefused, kick_off
from api.settings import Settings
from events.config import ConfigError
from projections.ehi_export import RESOURCE_TYPES, ExportRequest, changed_since, file_name
from projections.reads import Reader

ASYNC = {"prefer": "respond-async", "accept": "application/fhir+json"}


def test_a_kick_off_needs_prefer_respond_async_and_a_fhir_accept() -> None:
    with pytest.raises(KickOffRefused, match="Prefer: respond-async"):
        kick_off({"accept": "application/fhir+json"}, {})
    with pytest.raises(KickOffRefused, match="Accept"):
        kick_off({**ASYNC, "accept": "text/html"}, {})
    assert kick_off({"prefer": "respond-async"}, {}).types is None  # no Accept: taken as FHIR


def test_type_and_since_are_read_and_anything_else_refused() -> None:
    chosen = kick_off(ASYNC, {"_type": ["Patient,Observation", "Condition"]})
    assert chosen.types == {"Patient", "Observation", "Condition"}
    with pytest.raises(KickOffRefused, match="Spaceship"):
        kick_off(ASYNC, {"_type": ["Patient,Spaceship"]})
    since = kick_off(ASYNC, {"_since": ["2026-12-01T01:00:00+01:00"]}).since
    assert since == "2026-12-01T00:00:00.000000Z"
    for bad in ("2026-12-01", "yesterday", "2026-12-01T00:00:00"):  # a date, words, no zone
        with pytest.raises(KickOffRefused, match="_since"):
            kick_off(ASYNC, {"_since": [bad]})
    with pytest.raises(KickOffRefused, match="_typeFilter"):
        kick_off(ASYNC, {"_typeFilter": ["Observation?code=1"]})
    assert kick_off({**ASYNC, "prefer": "respond-async, handling=lenient"}, {"_elements": ["x"]})
    with pytest.raises(KickOffRefused, match="_outputFormat"):
        kick_off(ASYNC, {"_outputFormat": ["text/csv"]})


def test_public_urls_come_from_the_environment_and_must_be_absolute() -> None:
    env = {
        "CHARTLEDGER_PUBLIC_BASE_URL": "https://ehr.example.org/chart/",
        "CHARTLEDGER_EXPORT_DOCS_URL": "https://docs.example.org/EHI_EXPORT.md",
    }
    settings = Settings.from_env(env)
    assert settings.public_base_url == env["CHARTLEDGER_PUBLIC_BASE_URL"]
    assert settings.export_docs_url == env["CHARTLEDGER_EXPORT_DOCS_URL"]
    assert Settings.from_env({}).public_base_url is None
    for bad in ("ehr.example.org", "ftp://ehr.example.org/", "https://ehr.example.org/?a=1"):
        with pytest.raises(ConfigError, match="CHARTLEDGER_PUBLIC_BASE_URL"):
            Settings.from_env({"CHARTLEDGER_PUBLIC_BASE_URL": bad})


names = st.sampled_from(["Patient.ndjson", "native/records.msgpack", "README.md", "EHI_EXPORT.md"])
bases = st.sampled_from(
    [None, "http://testserver/", "https://ehr.example.org/exports/", "https://h:8443/a/b/"]
)


@given(names, bases, st.uuids())
def test_a_manifest_url_names_its_file_whatever_the_base(
    name: str, base: str | None, export_id: UUID
) -> None:
    request = ExportRequest(Reader(export_id, "PATRQT"), None, "r", True, export_id, base)
    url = request.url_of(name)
    assert file_name(url, str(export_id)) == name
    assert (base is None) == (not url.startswith(("http://", "https://")))


stamps = st.integers(min_value=0, max_value=9).map(lambda d: f"2026-12-0{d}T00:00:00.000000Z")


@given(st.lists(st.tuples(st.sampled_from(RESOURCE_TYPES), stamps)), stamps)
def test_since_keeps_exactly_what_changed_at_or_after_it(
    made: list[tuple[str, str]], since: str
) -> None:
    resources = [{"resourceType": kind, "meta": {"lastUpdated": at}} for kind, at in made]
    kept = list(changed_since(iter(resources), since))
    assert kept == [r for r in resources if r["meta"]["lastUpdated"] >= since]
    binary = {"resourceType": "Binary"}  # goes with the resource before it
    followed = list(changed_since(iter([*resources[-1:], binary]), since))
    assert (binary in followed) == (not resources or resources[-1]["meta"]["lastUpdated"] >= since)
