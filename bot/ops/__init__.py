"""Running it: metrics, structured logs with secrets redacted, memory reports."""
