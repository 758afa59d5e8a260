"""Small rules of the command line: when ``matters`` and ``holds`` go to a server, and which files
of an export the CLI will write."""

from __future__ import annotations

import pytest

from api.cli import build_parser, names_server
from api.remote_legal_cli import _export_files

MANIFEST = {
    "output": [{"type": "Patient", "url": "Patient.ndjson", "count": 1}],
    "extension": {"x": {"native": [{"url": "native/records.msgpack"}]}},
}


@pytest.mark.parametrize(
    ("args", "remote"),
    [
        (["--server", "http://h", "matters", "list"], True),
        (["--server=http://h", "holds", "mine"], True),
        (["matters", "list"], False),
        (["holds", "place", "m", "--name", "x", "--by", "rita"], False),
        (["matters", "open", "--name", "--server"], False),  # a value, not the option
    ],
)
def test_matters_and_holds_go_to_a_server_only_when_server_is_given(
    args: list[str], remote: bool
) -> None:
    assert names_server(args) is remote
    options = build_parser(remote).parse_args(args if remote else ["matters", "list"])
    assert bool(getattr(options, "remote", False)) is remote


def test_the_remote_tree_has_remote_matters_and_holds_and_keeps_local_retention() -> None:
    remote = build_parser(True).parse_args(["--server", "u", "holds", "mine"])
    assert remote.remote and remote.server == "u"
    local = build_parser(False).parse_args(["holds", "remind"])
    assert not getattr(local, "remote", False)
    with pytest.raises(SystemExit):
        build_parser(False).parse_args(["holds", "mine"])  # no local custodian view
    assert build_parser(True).parse_args(["retention", "policies"]).command == "retention"


def test_an_export_s_files_are_its_manifest_documentation_output_and_natives() -> None:
    assert _export_files(MANIFEST) == [
        "manifest.json", "EHI_EXPORT.md", "Patient.ndjson", "native/records.msgpack"
    ]  # fmt: skip
    # Since format 4: a README, and URLs absolute (the files' names are what follows the id).
    base = "https://ehr.example.org/exports/e1/"
    served = {
        "output": [{"type": "Patient", "url": base + "Patient.ndjson", "count": 1}],
        "extension": {"x": {"format": "chartledger-ehi-export/4", "exportId": "e1",
                            "native": [{"type": "records", "url": base + "native/r.msgpack"}]}},
    }  # fmt: skip
    assert _export_files(served) == [
        "manifest.json", "EHI_EXPORT.md", "README.md", "Patient.ndjson", "native/r.msgpack"
    ]  # fmt: skip


@pytest.mark.parametrize("name", ["../x.ndjson", "/etc/passwd", "native/../../x", ""])
def test_an_export_naming_a_file_outside_its_folder_is_refused(name: str) -> None:
    bad = {**MANIFEST, "output": [{"type": "Patient", "url": name, "count": 1}]}
    with pytest.raises(ValueError, match="outside its folder"):
        _export_files(bad)
