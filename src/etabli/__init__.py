"""Établi: production management for jewelry houses and their workshops."""

__version__ = "0.1.0"
