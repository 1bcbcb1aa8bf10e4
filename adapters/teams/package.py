"""The Teams app package: manifest.json and two icons, zipped, ready to upload.

The manifest (schema 1.17) names the bot (its Azure app id), where it may be
used (personal, team, group chat), the commands Teams suggests as people type,
and the resource-specific permission `ChannelMessage.Read.Group`: without it
a bot sees only channel messages that @mention it, and could not follow the
replies in a huddle thread. The icons are drawn here (a magnifier on the accent
colour, and its white outline), so the package needs no image files.
"""

from __future__ import annotations

import json
import math
import re
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

MANIFEST_VERSION = "1.17"
MANIFEST_SCHEMA = (
    "https://developer.microsoft.com/en-us/json-schemas/teams/v1.17/MicrosoftTeams.schema.json"
)
ACCENT = (0x4B, 0x53, 0xBC)
COLOR_SIZE, OUTLINE_SIZE = 192, 32
SCOPES = ["personal", "team", "groupChat"]
# Teams' limits on a command list.
MAX_COMMANDS, COMMAND_TITLE, COMMAND_DESCRIPTION = 10, 32, 128
RSC = "ChannelMessage.Read.Group"
_GUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_HOST = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d+)?$", re.IGNORECASE)

SHORT_DESCRIPTION = "Find the colleague who knows, and keep what you concluded."
FULL_DESCRIPTION = (
    "whoknows finds the right expert colleague for a customer's question in seconds: "
    "answers that already exist first, then the people who know the topic, who is free "
    "now and why they were picked. Start a huddle thread with them in your team's channel, "
    "and save the conclusion to the knowledge base when it is settled."
)


class Route(Protocol):
    name: str
    summary: str


# --- icons ------------------------------------------------------------------------------


def png(width: int, height: int, rgba: bytes) -> bytes:
    """An 8-bit RGBA PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    stride = width * 4
    rows = b"".join(b"\x00" + rgba[y * stride : (y + 1) * stride] for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


def _magnifier(x: float, y: float) -> float:
    """Distance outside the glyph (negative inside), in units of the icon's side."""
    ring = abs(math.hypot(x - 0.42, y - 0.42) - 0.22) - 0.06
    # The handle: a capsule from the ring down to the lower right.
    t = max(0.0, min(1.0, ((x - 0.58) + (y - 0.58)) / (2 * 0.22)))
    handle = math.hypot(x - (0.58 + 0.22 * t), y - (0.58 + 0.22 * t)) - 0.07
    return min(ring, handle)


def _rounded_square(x: float, y: float, radius: float = 0.2) -> float:
    qx, qy = abs(x - 0.5) - 0.5 + radius, abs(y - 0.5) - 0.5 + radius
    return math.hypot(max(qx, 0.0), max(qy, 0.0)) + min(max(qx, qy), 0.0) - radius


def _draw(size: int, paint: Callable[[float, float, float], tuple[int, int, int, int]]) -> bytes:
    """Each pixel painted from its centre, with a one-pixel soft edge (`px` = a pixel)."""
    px = 1 / size
    return bytes(
        channel
        for row in range(size)
        for column in range(size)
        for channel in paint((column + 0.5) * px, (row + 0.5) * px, px)
    )


def _coverage(distance: float, px: float) -> float:
    return max(0.0, min(1.0, 0.5 - distance / px))


def color_icon(size: int = COLOR_SIZE) -> bytes:
    def paint(x: float, y: float, px: float) -> tuple[int, int, int, int]:
        glyph = _coverage(_magnifier(x, y), px)
        rgb = tuple(round(c + (255 - c) * glyph) for c in ACCENT)
        return (*rgb, round(255 * _coverage(_rounded_square(x, y), px)))  # type: ignore[return-value]

    return png(size, size, _draw(size, paint))


def outline_icon(size: int = OUTLINE_SIZE) -> bytes:
    """White on transparent, as Teams requires for the outline icon."""

    def paint(x: float, y: float, px: float) -> tuple[int, int, int, int]:
        return (255, 255, 255, round(255 * _coverage(_magnifier(x, y), px)))

    return png(size, size, _draw(size, paint))


# --- manifest ---------------------------------------------------------------------------


def commands(routes: Iterable[Route]) -> list[dict[str, str]]:
    listed = [
        {
            "title": route.name[:COMMAND_TITLE],
            "description": route.summary[:COMMAND_DESCRIPTION],
        }
        for route in routes
    ]
    return listed[:MAX_COMMANDS]


def manifest(
    app_id: str, host: str, routes: Iterable[Route], *, version: str = "1.0.0"
) -> dict[str, Any]:
    if not _GUID.match(app_id):
        raise ValueError(
            f"the app id must be the Azure Bot's Microsoft App ID (a GUID): {app_id!r}"
        )
    host = host.strip().removeprefix("https://").rstrip("/")
    if not _HOST.match(host):
        raise ValueError(f"not a host name: {host!r} (for example whoknows.example.com)")
    site = f"https://{host}"
    listed = commands(routes)
    return {
        "$schema": MANIFEST_SCHEMA,
        "manifestVersion": MANIFEST_VERSION,
        "version": version,
        "id": app_id,
        "developer": {
            "name": "whoknows",
            "websiteUrl": site,
            "privacyUrl": f"{site}/privacy",
            "termsOfUseUrl": f"{site}/terms",
        },
        "name": {"short": "whoknows", "full": "whoknows: find the colleague who knows"},
        "description": {"short": SHORT_DESCRIPTION, "full": FULL_DESCRIPTION},
        "icons": {"color": "color.png", "outline": "outline.png"},
        "accentColor": "#{:02X}{:02X}{:02X}".format(*ACCENT),
        "bots": [
            {
                "botId": app_id,
                "scopes": SCOPES,
                "supportsFiles": False,
                "isNotificationOnly": False,
                "commandLists": [
                    {"scopes": ["personal"], "commands": listed},
                    {"scopes": ["team", "groupChat"], "commands": listed},
                ],
            }
        ],
        "permissions": ["identity", "messageTeamMembers"],
        "validDomains": [host],
        # Resource-specific consent: read every message in the channels of a team
        # that installs the app (huddle thread replies do not @mention the bot).
        "webApplicationInfo": {"id": app_id, "resource": f"api://{host}/botid-{app_id}"},
        "authorization": {
            "permissions": {"resourceSpecific": [{"name": RSC, "type": "Application"}]}
        },
    }


def write_package(path: Path, app_id: str, host: str, routes: Iterable[Route]) -> Path:
    app = manifest(app_id, host, routes)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", json.dumps(app, indent=2, ensure_ascii=False))
        archive.writestr("color.png", color_icon())
        archive.writestr("outline.png", outline_icon())
    return path
