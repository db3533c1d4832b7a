"""Readers and clients for the public sources: GDC, UCSC Xena, GEO."""
