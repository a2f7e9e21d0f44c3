"""The config, the first stage: a config file read into a located document, validated into a Spec,
planned into layer classes and shapes (no numpy here); and the config's JSON Schema."""
