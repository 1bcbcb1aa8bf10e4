"""The Slack app manifest names the bot and the commands the chat answers."""

from __future__ import annotations

from pathlib import Path

import yaml

from skills import build_router

MANIFEST = Path(__file__).resolve().parent.parent / "manifest.yml"
# Slack's own commands: ours must never take them (/huddle starts an audio huddle).
SLACK_BUILT_IN = {"/huddle", "/status", "/away", "/dnd", "/remind", "/invite", "/who"}


def test_manifest_declares_the_bot_and_slash_commands_the_router_knows() -> None:
    manifest = yaml.safe_load(MANIFEST.read_text())
    assert manifest["display_information"]["name"] == "whoknows"
    assert manifest["features"]["bot_user"]["display_name"] == "whoknows"
    commands = {c["command"] for c in manifest["features"]["slash_commands"]}
    assert commands == {"/whoknows", "/kb", "/expertise"}
    assert not commands & SLACK_BUILT_IN
    words = {w for route in build_router().routes.values() for w in (route.name, *route.aliases)}
    assert all(command.lstrip("/") in words for command in commands)
    assert "commands" in manifest["oauth_config"]["scopes"]["bot"]


def test_every_declared_event_shortcut_and_command_has_a_slack_listener_and_back() -> None:
    from adapters.slack.app import COMMANDS, SHORTCUTS, SlackAdapter

    manifest = yaml.safe_load(MANIFEST.read_text())
    declared_events = {
        e.split(".")[0] for e in manifest["settings"]["event_subscriptions"]["bot_events"]
    }
    listeners = SlackAdapter.__new__(SlackAdapter).event_listeners()
    assert set(listeners) == declared_events
    assert all(callable(handler) for handler in listeners.values())
    shortcuts = {s["callback_id"] for s in manifest["features"]["shortcuts"]}
    assert shortcuts == set(SHORTCUTS)
    assert {c["command"] for c in manifest["features"]["slash_commands"]} == set(COMMANDS)
    # Every scope the listeners need is asked for, and no more than these.
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert scopes == {
        "commands",
        "chat:write",
        "im:write",
        "users:read",
        # the directory's e-mails: imported people linked to their Slack accounts
        "users:read.email",
        "dnd:read",
        "app_mentions:read",
        "channels:history",
        "groups:history",
    }
