"""The SMS line: text a tip, get a reference, leave no number behind."""
