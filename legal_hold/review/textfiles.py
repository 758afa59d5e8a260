"""text/<BegBates>.txt: a timeline's exact text for search, in UTF-8 with LF line ends.

The same entries as the PDF, in the same order, but unwrapped and untransliterated: each entry
is a heading line, the source's time if any, its text (or the withheld notice), a blank line.
"""

from __future__ import annotations

from legal_hold.review.items import Timeline
from legal_hold.review.layout import WITHHELD_NOTICE


def timeline_text(timeline: Timeline, beg_bates: str, end_bates: str) -> bytes:
    parts = [f"{timeline.title}\ncustodian: {timeline.custodian}\n"]
    parts.append(f"Bates {beg_bates}-{end_bates}\n\n")
    for entry in timeline.entries:
        by = f"  entered by {entry.actor}" if entry.actor else ""
        parts.append(f"#{entry.position}  {entry.recorded}  {entry.kind}{by}\n")
        if entry.original:
            parts.append(f"  {entry.original_label}: {entry.original}\n")
        if entry.withheld is not None:
            notice = WITHHELD_NOTICE.get(entry.withheld, "[WITHHELD: {w}]")
            parts.append("  " + notice.format(p=entry.position, w=entry.withheld) + "\n\n")
            continue
        if entry.row:
            parts.append("  " + " | ".join(entry.row) + "\n")
        parts.extend(f"  {line}\n" for line in entry.text.splitlines())
        parts.append("\n")
    return "".join(parts).encode("utf-8", errors="replace")
