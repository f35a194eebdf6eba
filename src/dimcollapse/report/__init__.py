"""Figures and Markdown reports built from result files on disk (never imports models)."""
