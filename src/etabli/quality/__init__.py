"""Inspection templates, inspections with tolerances, signed sheets, nonconformities and rework."""
