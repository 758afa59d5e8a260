"""The documents of a production as the review files see them: what each is, its Bates range,
its pages and where its files are. Timelines come first, in the order given, then natives."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath

from legal_hold.review.bates import BatesRange, label
from legal_hold.review.items import Native, Timeline
from legal_hold.review.layout import Row

IMAGES, TEXT = "images", "text"


@dataclass
class Document:
    bates: BatesRange
    pages: list[list[Row]]
    timeline: Timeline | None = None
    native: Native | None = None
    privileged_on_page: dict[int, int] = field(default_factory=dict)
    image_sha256: str = ""  # filled in once the rendering is written

    @property
    def doc_type(self) -> str:
        if self.native is not None:
            return "Email" if self.native.media_type == "message/rfc822" else "Native document"
        assert self.timeline is not None
        return "Message thread" if self.timeline.kind == "thread" else "Chart timeline"

    @property
    def title(self) -> str:
        """A timeline's title, or a native's file name."""
        return self.native.file_name if self.native is not None else self._timeline().title

    @property
    def custodian(self) -> str:
        return self.native.custodian if self.native is not None else self._timeline().custodian

    def _timeline(self) -> Timeline:
        assert self.timeline is not None
        return self.timeline

    @property
    def image_path(self) -> str:
        """The rendering (a timeline's PDF, or a native's one-page slip sheet)."""
        return f"{IMAGES}/{self.bates.beg}.pdf"

    @property
    def text_path(self) -> str | None:
        """The exact text of a timeline; natives have none (their bytes are the record)."""
        return None if self.timeline is None else f"{TEXT}/{self.bates.beg}.txt"

    @property
    def file_name(self) -> str:
        return self.native.file_name if self.native is not None else f"{self.bates.beg}.pdf"

    @property
    def file_extension(self) -> str:
        return PurePosixPath(self.file_name).suffix.lstrip(".").lower()

    @property
    def positions(self) -> list[int]:
        if self.native is not None:
            return [self.native.position]
        assert self.timeline is not None
        return [entry.position for entry in self.timeline.entries]

    def label_of_page(self, index: int) -> str:
        return label(self.bates.prefix, self.bates.first + index, self.bates.digits)
