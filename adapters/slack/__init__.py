"""The Slack app: slash commands, Block Kit, huddle threads, App Home (slack-bolt, async)."""
