"""Review-platform files of a production: Bates numbers, PDFs, load files, declarations."""
