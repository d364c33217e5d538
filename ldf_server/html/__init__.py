"""HTML for people: readable views of every resource and the dashboard at ``/`` (Jinja2 templates, vendored assets)."""
