"""Governance: the rules about how segments may be used, written in config/governance.yaml
and config/campaigns/. firewall.py checks campaigns; the dbt models in
dbt_project/models/governance measure pressure, pauses, overrides, the audit trail and bias,
and red_flags.py and audit.py read them back; governance.py lints language; assets.py runs
them."""
