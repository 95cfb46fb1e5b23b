"""The dashboard: a read-only web page and JSON API over the topics (bizstream.dashboard.server)."""
