"""Readers and writers: images, videos (audio kept), image sequences, webcam."""
