"""Showing results, computing nothing: the terminal table and the output formats (JSON, JUnit,
Markdown, GitHub annotations)."""
