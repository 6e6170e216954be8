"""Benchmarks: a realistic data generator (`etabli bench seed`) and the figures (`bench run`).

`seed.py` writes a jewellery house's history straight into the tables (raw batched inserts, COPY
on PostgreSQL): the rows are those the production services would have written, walked piece by
piece along their routes, so every constraint holds and the cached piece state matches the events.
`figures.py` times the real views, the API under a real gunicorn server, the reports and the alert
detection, each next to a hand-written SQL query for the same aggregate.
"""
