"""The segment dictionary: rules are written in config/segments.yaml, compiled and validated
by rules.py and segment_dictionary.py, versioned and approved by versions.py (the approval
ledger), and every change recorded by changelog.py."""
