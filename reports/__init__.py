"""The annual report: figures read from the registry's history, charts, tables and the printable page."""
