"""The layer library: the protocol, the registry, option models, plugins, the built-in layers
(importing ``layers.catalog`` registers them) and the reference generated from them."""
