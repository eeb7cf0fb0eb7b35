"""listener: self-hosted social listening and sentiment monitoring."""

__version__ = "0.1.0"
