"""TAK Marti HTTP API (what ATAK, WinTAK and iTAK call on 8443)."""
