"""Running checks on config files: the pipeline (load, guard, build, check) that the command line,
the notebook API and the pytest plugin share; many files in parallel; a progress display."""
