"""The thin client's side of FHIR Bulk Data export (api/routers/bulk_data.py): kick off, poll the
status with its progress, download every file, cancel. ``BulkData(client).export(...)`` does it
all, on the ``Client``'s session (bearer token) and its own error classes.

URLs come from the server's answers (``Content-Location``, the manifest); the token is only ever
sent to the server the client was made for, so a manifest naming another host is refused.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from uuid import UUID, uuid4

import httpx

from api.client import Client, UnexpectedAnswer
from events.private_files import private_dir, write_private
from projections.ehi_export import DOCUMENTATION_COPY, EXTENSION, MANIFEST, README, file_name

POLL_FIRST, POLL_MOST = 0.05, 1.0  # seconds between polls, growing up to Retry-After at most
PREFER = {"Prefer": "respond-async", "Accept": "application/fhir+json"}


@dataclass(frozen=True)
class Status:
    """One poll: ``manifest`` once written, else ``progress`` (X-Progress) and ``retry_after``."""

    manifest: dict[str, Any] | None
    progress: str
    retry_after: float


class BulkData:
    def __init__(self, client: Client) -> None:
        self.client = client

    def kick_off(
        self,
        patient_id: UUID | str | None = None,
        *,
        types: Iterable[str] | None = None,
        since: str | None = None,
    ) -> str:
        """Start an export of one patient (None: everyone); its status URL."""
        path = "/fhir/$export" if patient_id is None else f"/fhir/Patient/{patient_id}/$export"
        params: dict[str, str] = {"_outputFormat": "application/fhir+ndjson"}
        if types is not None:
            params["_type"] = ",".join(types)
        if since is not None:
            params["_since"] = since
        response = self.client.request("GET", path, params=params, headers=PREFER)
        location = response.headers.get("content-location")
        if response.status_code != 202 or not location:
            raise UnexpectedAnswer(f"the kick-off of {path} answered without Content-Location")
        return self._ours(location)

    def status(self, status_url: str) -> Status:
        response = self.client.request("GET", self._ours(status_url))
        if response.status_code == 200:
            manifest: dict[str, Any] = response.json()
            return Status(manifest, "done", 0.0)
        retry = response.headers.get("retry-after", "1")
        wait = float(retry) if retry.isdigit() else 1.0
        return Status(None, response.headers.get("x-progress", ""), wait)

    def wait(
        self, status_url: str, on_progress: Callable[[str], None] | None = None
    ) -> dict[str, Any]:
        """Poll until the export is written: its manifest. A failed export raises its error
        (as ``Client`` raises any); a cancelled one ``NotFound``."""
        pause = POLL_FIRST
        while True:
            now = self.status(status_url)
            if now.manifest is not None:
                return now.manifest
            if on_progress is not None:
                on_progress(now.progress)
            time.sleep(min(pause, now.retry_after))
            pause = min(pause * 2, POLL_MOST)

    def cancel(self, status_url: str) -> None:
        """Cancel the export, or delete its files once written."""
        self.client.request("DELETE", self._ours(status_url))

    def download(self, manifest: dict[str, Any], out: Path) -> list[Path]:
        """Every file of the manifest (FHIR NDJSON, the native records, the README and the
        documentation's copy) and the manifest itself into ``out``, a new folder, which
        appears only once all are in it; the paths written."""
        if out.exists():
            raise FileExistsError(f"{out} exists: an export is downloaded into a new folder")
        made = manifest.get("extension", {}).get(EXTENSION, {})
        export_id = str(made.get("exportId", ""))
        urls = [f["url"] for f in [*manifest.get("output", []), *made.get("native", [])]]
        folder = f"/exports/{export_id}/"
        served = [u for u in urls if folder in u]
        if not served:
            raise UnexpectedAnswer("the manifest names no file of its export")
        prefix = served[0].rpartition(folder)[0] + folder
        urls += [prefix + README, prefix + DOCUMENTATION_COPY]
        staging = out.parent / f".{out.name}.partial-{uuid4().hex}"
        private_dir(staging, exist_ok=False)
        written = []
        try:
            for url in urls:
                name = file_name(url, export_id)
                parts = PurePosixPath(name).parts
                if not parts or ".." in parts or PurePosixPath(name).is_absolute():
                    raise UnexpectedAnswer(
                        f"the manifest lists a file outside its folder: {name!r}"
                    )
                target = staging / name
                private_dir(target.parent)
                body = self.client.request("GET", self._ours(url)).content
                write_private(target, body, exclusive=True)
                written.append(out / name)
            write_private(staging / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
            staging.rename(out)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return [*written, out / MANIFEST]

    def export(
        self,
        out: Path,
        patient_id: UUID | str | None = None,
        *,
        types: Iterable[str] | None = None,
        since: str | None = None,
        on_progress: Callable[[str], None] | None = None,
    ) -> dict[str, Any]:
        """Kick off, wait, download into ``out``; the manifest."""
        if out.exists():
            raise FileExistsError(f"{out} exists: an export is downloaded into a new folder")
        status_url = self.kick_off(patient_id, types=types, since=since)
        manifest = self.wait(status_url, on_progress)
        self.download(manifest, out)
        return manifest

    def _ours(self, url: str) -> str:
        """``url`` if it is on this client's server (the token goes nowhere else)."""
        here = httpx.URL(str(self.client.http.base_url))
        there = httpx.URL(url)
        if there.is_relative_url:
            return url
        if (there.scheme, there.host, there.port) != (here.scheme, here.host, here.port):
            raise UnexpectedAnswer(f"the server pointed at another host: {there.host}")
        return url
