"""Readers and writers for files: still images (and, in sibling modules, videos); no model code here."""
