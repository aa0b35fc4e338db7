"""Calcifer: an AI gateway that routes by model name and prices every request exactly."""

__version__ = "0.1.0"
