"""Hardening: floods, hostile input, endpoint protection and fuzzing of the public surface."""
