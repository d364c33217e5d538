"""ldf-server: Linked Data Fragments server for real-time open city data."""

__version__ = "0.1.0"
