"""One module per schema change of the state store, oldest first."""
