"""Imports: pure parsers (bytes in; accepted items and rejections out) for the files a practice
brings from elsewhere. ``api/importing.py`` writes what they accept, all in one transaction."""
