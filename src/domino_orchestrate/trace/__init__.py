"""mltrace-style queries over our lineage: an embedded store, CLI, Python API and web page."""
