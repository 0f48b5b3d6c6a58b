"""The monthly review pack: review_pack.py renders the month's segments, health, governance
and changes into a report (HTML and PDF) and posts it; assets.py builds it each month."""
