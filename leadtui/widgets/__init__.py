"""Widgets of the lead table UI."""
