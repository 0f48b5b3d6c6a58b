"""Governance: the rules about how segments may be used, written in config/governance.yaml
and config/campaigns/. firewall.py checks campaigns, red_flags.py and audit.py measure
pressure, pauses, overrides and bias, governance.py lints language; assets.py runs them."""
