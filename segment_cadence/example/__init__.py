"""Example data, apart from the product: a generated jeweller's customers, orders, campaign
sends and engagement (`python -m segment_cadence.example.generator`). Nothing in the product
imports it; the demo, the tests and the benchmark do."""
