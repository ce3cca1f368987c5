"""Readers and writers for files: images, videos (audio kept), image sequences, webcam; no model code."""
