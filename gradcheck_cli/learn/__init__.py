"""The teaching tools: the equations a config asks for (explain), step sweeps, and array dumps,
each with its renderer."""
