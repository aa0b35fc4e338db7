"""Configuration: the environment's settings and the YAML config file, read into plain values."""
