"""A run's HTML page: page (where it goes, writing it), data (what it shows), html (how)."""
