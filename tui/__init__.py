"""The terminal user interface: the app, its widgets and the helpers every screen shares."""
