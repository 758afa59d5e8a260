"""Review-platform files of a production: Bates numbers, PDFs, load files, declarations.

``write_review_set(root, review)`` is the one entry point; docs/REVIEW_FILES.md specifies what
it writes.
"""

from legal_hold.review.review_set import write_review_set

__all__ = ["write_review_set"]
