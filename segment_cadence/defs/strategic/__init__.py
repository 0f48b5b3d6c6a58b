"""The quarterly strategic refresh: strategic.py re-clusters customers, candidate.py writes a
candidate dictionary checked against the business rules; it goes live only through review
(`segment-cadence definitions approve`)."""
