"""Dovecot fixtures for the IMAP integration tests (filled in with the IMAP watcher)."""
