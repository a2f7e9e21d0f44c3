"""The checker inside other tools: the notebook API and the pytest plugin."""
