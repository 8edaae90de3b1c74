"""cratewatch: identify vinyl albums from CCTV crops. This package never imports torch."""

__version__ = "0.1.0"
