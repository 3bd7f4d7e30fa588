"""Server-rendered pages (Jinja2); they work without JavaScript."""
