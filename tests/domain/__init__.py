"""Unit tests of the domain: no network, no sleeping."""
