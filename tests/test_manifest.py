"""The Slack app manifest names the bot and the commands the chat answers, and every
field of it is as Slack's manifest reference allows."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator, FormatChecker

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


# --- every field against Slack's manifest reference ------------------------------------------
#
# The rules of the app manifest reference (docs.slack.dev/reference/app-manifest) and of
# the JSON schema Slack publishes for manifests (slackapi/manifest-schema), for the
# fields this app uses, as a JSON schema: an unknown or misspelt key is refused too.

_HTTP_URL = {"type": "string", "pattern": r"^https?://", "maxLength": 3000}
_FLAG = {"type": "boolean"}


def _strings(longest: int, *, unique: bool = True, most: int = 100) -> dict[str, Any]:
    return {
        "type": "array",
        "items": {"type": "string", "minLength": 1, "maxLength": longest},
        "uniqueItems": unique,
        "maxItems": most,
    }


def _closed(required: list[str], **properties: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": required,
        "properties": properties,
    }


SLACK_MANIFEST_SCHEMA: dict[str, Any] = _closed(
    ["display_information"],
    _metadata=_closed([], major_version={"type": "integer"}, minor_version={"type": "integer"}),
    display_information=_closed(
        ["name"],
        name={"type": "string", "minLength": 1, "maxLength": 35},
        description={"type": "string", "minLength": 1, "maxLength": 140},
        long_description={"type": "string", "minLength": 174, "maxLength": 4000},
        background_color={"type": "string", "pattern": r"^#([0-9a-fA-F]{3}){1,2}$"},
    ),
    features=_closed(
        [],
        bot_user=_closed(
            ["display_name"],
            display_name={"type": "string", "minLength": 1, "maxLength": 80},
            always_online=_FLAG,
        ),
        app_home=_closed(
            [],
            home_tab_enabled=_FLAG,
            messages_tab_enabled=_FLAG,
            messages_tab_read_only_enabled=_FLAG,
        ),
        slash_commands={
            "type": "array",
            "minItems": 1,
            "maxItems": 50,
            "items": _closed(
                ["command", "description"],
                # Lower case, no spaces: what Slack's own settings page accepts.
                command={"type": "string", "pattern": r"^/[a-z0-9_.-]{1,31}$"},
                url=_HTTP_URL,
                description={"type": "string", "minLength": 1, "maxLength": 2000},
                usage_hint={"type": "string", "minLength": 1, "maxLength": 1000},
                should_escape=_FLAG,
            ),
        },
        shortcuts={
            "type": "array",
            "minItems": 1,
            "maxItems": 10,
            "items": _closed(
                ["name", "type", "callback_id", "description"],
                name={"type": "string", "minLength": 1, "maxLength": 24},
                type={"enum": ["message", "global"]},
                callback_id={"type": "string", "minLength": 1, "maxLength": 255},
                description={"type": "string", "minLength": 1, "maxLength": 150},
            ),
        },
    ),
    oauth_config=_closed(
        [],
        redirect_urls=_strings(2500, most=1000),
        scopes=_closed([], bot=_strings(50, most=255), user=_strings(50, most=255)),
        token_management_enabled=_FLAG,
    ),
    settings=_closed(
        [],
        event_subscriptions=_closed(
            [],
            request_url={**_HTTP_URL, "maxLength": 3500},
            bot_events=_strings(50),
            user_events=_strings(50),
        ),
        interactivity=_closed(
            ["is_enabled"],
            is_enabled=_FLAG,
            request_url={**_HTTP_URL, "maxLength": 3500},
            message_menu_options_url={**_HTTP_URL, "maxLength": 3500},
        ),
        org_deploy_enabled=_FLAG,
        socket_mode_enabled=_FLAG,
        token_rotation_enabled=_FLAG,
    ),
)

# The scope each event needs (the Events API reference: each event's "Required scopes").
EVENT_SCOPES = {
    "app_mention": "app_mentions:read",
    "message.channels": "channels:history",
    "message.groups": "groups:history",
    "message.im": "im:history",
    "message.mpim": "mpim:history",
    "team_join": "users:read",
    "user_change": "users:read",
    "user_huddle_changed": "users:read",
    "user_status_changed": "users:read",
    "app_home_opened": None,
    "app_uninstalled": None,
    "tokens_revoked": None,
}


def slack_manifest_problems(manifest: dict[str, Any]) -> list[str]:
    """Every field against the reference, then the rules between fields."""
    validator = Draft7Validator(SLACK_MANIFEST_SCHEMA, format_checker=FormatChecker())
    problems = [
        f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
        for e in validator.iter_errors(manifest)
    ]
    if problems:
        return problems
    features = manifest.get("features", {})
    settings = manifest.get("settings", {})
    scopes = set(manifest.get("oauth_config", {}).get("scopes", {}).get("bot", []))
    if scopes and "bot_user" not in features:
        problems.append("bot scopes without a bot user")
    if (features.get("slash_commands") or features.get("shortcuts")) and "commands" not in scopes:
        problems.append("slash commands or shortcuts without the `commands` scope")
    for event in settings.get("event_subscriptions", {}).get("bot_events", []):
        if event not in EVENT_SCOPES:
            problems.append(f"bot event {event}: not one this check knows the scope of")
        elif EVENT_SCOPES[event] is not None and EVENT_SCOPES[event] not in scopes:
            problems.append(f"bot event {event} needs the {EVENT_SCOPES[event]} scope")
    if features.get("app_home", {}).get("home_tab_enabled") and "bot_user" not in features:
        problems.append("the home tab needs a bot user")
    if not settings.get("socket_mode_enabled"):
        # Over HTTP, Slack must know where to send each kind of request.
        for where, url in [
            (
                "settings/event_subscriptions/request_url",
                settings.get("event_subscriptions", {}).get("request_url"),
            ),
            (
                "settings/interactivity/request_url",
                settings.get("interactivity", {}).get("request_url"),
            ),
            *(
                (f"slash command {c['command']} url", c.get("url"))
                for c in features.get("slash_commands", [])
            ),
        ]:
            if not url:
                problems.append(f"{where}: needed without Socket Mode")
    commands = [c["command"] for c in features.get("slash_commands", [])]
    callbacks = [s["callback_id"] for s in features.get("shortcuts", [])]
    for name, values in (("slash command", commands), ("shortcut callback_id", callbacks)):
        if len(values) != len(set(values)):
            problems.append(f"a {name} is declared twice")
    return problems


def test_every_field_of_the_slack_manifest_is_as_slacks_reference_allows() -> None:
    manifest = yaml.safe_load(MANIFEST.read_text())
    assert slack_manifest_problems(manifest) == []
    # Served over HTTP instead, as README's step 3 says, it still holds.
    http = copy.deepcopy(manifest)
    http["settings"]["socket_mode_enabled"] = False
    assert slack_manifest_problems(http) == []


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(manifest: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        node = manifest
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if value is _DELETE:
            del node[last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return change


_DELETE = object()


def _without_scope(scope: str) -> Callable[[dict[str, Any]], None]:
    def change(manifest: dict[str, Any]) -> None:
        manifest["oauth_config"]["scopes"]["bot"].remove(scope)

    change.__name__ = f"without {scope}"
    return change


@pytest.mark.parametrize(
    "breaking",
    [
        _set("display_information/name", "w" * 36),
        _set("display_information/long_description", "Too short."),
        _set("display_information/background_color", "navy"),
        _set("features/slash_commands/0/command", "/Who Knows"),
        _set("features/slash_commands/0/should_escpae", True),
        _set("features/shortcuts/0/name", "Find an expert for this message"),
        _set("features/shortcuts/0/type", "channel"),
        _set("oauth_config/scopes/bot/1", "commands"),
        _without_scope("app_mentions:read"),  # app_mention is still subscribed
        _without_scope("commands"),  # the slash commands are still declared
        _set("features/bot_user", _DELETE),
        _set("settings/interactivity/is_enabled", _DELETE),
        _set("settings/event_subscriptions/request_url", "wss://YOUR-HOST/slack/events"),
    ],
)
def test_a_slack_manifest_broken_on_purpose_is_refused(
    breaking: Callable[[dict[str, Any]], None],
) -> None:
    manifest = yaml.safe_load(MANIFEST.read_text())
    breaking(manifest)
    assert slack_manifest_problems(manifest)


def test_over_http_every_request_url_is_needed() -> None:
    manifest = yaml.safe_load(MANIFEST.read_text())
    manifest["settings"]["socket_mode_enabled"] = False
    del manifest["settings"]["interactivity"]["request_url"]
    assert slack_manifest_problems(manifest) == [
        "settings/interactivity/request_url: needed without Socket Mode"
    ]
