"""Packaging, shipments, delivery documents, the client's reception and the closing of orders."""
