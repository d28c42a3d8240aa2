"""Plots (matplotlib, headless), written atomically as PNG."""
