"""Features on the one ingest path: presence, chat, emergencies, and the ingest itself."""
