"""Measuring, in one place, so a number means the same thing in every stage, table and report."""
