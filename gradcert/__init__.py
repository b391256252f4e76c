"""gradcert: certifies autograd engines against an exact oracle."""

__version__ = "0.1.0"
