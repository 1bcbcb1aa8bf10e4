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
