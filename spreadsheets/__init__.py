"""Spreadsheets in and out: reading CSV/XLSX as text, validating a whole import, writing exports."""
