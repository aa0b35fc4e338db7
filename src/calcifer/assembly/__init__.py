"""The composition root's assembly: providers, prices and routes built from settings, the config file
and plugins."""
