"""Fault injection: kills under load, hostile input, broken configuration and disks."""
