"""Screens of the lead table UI."""
