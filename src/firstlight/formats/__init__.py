"""Readers of delivered files: format and product-type detection, table
readers that stream in chunks, FITS header access. No database, no network."""
