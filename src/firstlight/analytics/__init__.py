"""What the archive learns from its own history: time-to-data statistics (``stats``),
the forecast made at arrival (``forecast``) and the release gate's anomaly model, its
training and versions (``gate_model``). Read from the ledger; no release step lives here."""
