"""Platform adapters: translate events into Commands, render Replies, deliver effects."""
