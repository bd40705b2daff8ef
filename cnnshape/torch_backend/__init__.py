"""Everything that needs torch: build, verify, export/import. Imported only on demand."""
