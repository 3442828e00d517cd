"""HTTP: health, metrics, and later the Marti API, the native REST API and the web picture."""
