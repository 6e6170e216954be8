"""Finishing operations (polishing, plating, engraving, hallmarking, cleaning) and hallmark
exemptions."""
