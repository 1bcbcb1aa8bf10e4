"""`whoknows teams-package`: a zip Teams accepts, with the manifest fields and icon sizes."""

from __future__ import annotations

import json
import re
import struct
import zipfile
import zlib
from pathlib import Path

import pytest

from bot.cli import main
from tests.adapters.teams.fake_teams import APP_ID


def read_png(data: bytes) -> tuple[int, int, bytes]:
    """Width, height and RGBA pixels, checking the signature, every CRC and the format."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, offset = {}, 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind, body = data[offset + 4 : offset + 8], data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert zlib.crc32(kind + body) == crc, kind
        chunks[kind] = chunks.get(kind, b"") + body
        offset += 12 + length
    width, height, depth, colour, *_ = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert (depth, colour) == (8, 6)  # 8-bit RGBA
    raw = zlib.decompress(chunks[b"IDAT"])
    stride = width * 4 + 1
    assert len(raw) == stride * height and all(raw[y * stride] == 0 for y in range(height))
    pixels = b"".join(raw[y * stride + 1 : (y + 1) * stride] for y in range(height))
    return width, height, pixels


def test_the_package_holds_a_valid_manifest_and_icons(tmp_path: Path, capsys) -> None:
    output = tmp_path / "whoknows.zip"
    assert (
        main(
            [
                "teams-package",
                "--app-id",
                APP_ID,
                "--host",
                "bot.contoso.example",
                "-o",
                str(output),
            ]
        )
        == 0
    )
    assert "upload it in Teams" in capsys.readouterr().out
    with zipfile.ZipFile(output) as archive:
        assert sorted(archive.namelist()) == ["color.png", "manifest.json", "outline.png"]
        manifest = json.loads(archive.read("manifest.json"))
        color = read_png(archive.read("color.png"))
        outline = read_png(archive.read("outline.png"))

    assert manifest["manifestVersion"] == "1.17" and manifest["$schema"].endswith(
        "v1.17/MicrosoftTeams.schema.json"
    )
    assert manifest["id"] == APP_ID and re.fullmatch(r"\d+\.\d+\.\d+", manifest["version"])
    for field in ("websiteUrl", "privacyUrl", "termsOfUseUrl"):
        assert manifest["developer"][field].startswith("https://bot.contoso.example")
    assert len(manifest["name"]["short"]) <= 30 and len(manifest["description"]["short"]) <= 80
    assert len(manifest["description"]["full"]) <= 4000
    assert re.fullmatch(r"#[0-9A-F]{6}", manifest["accentColor"])
    (bot,) = manifest["bots"]
    assert bot["botId"] == APP_ID and bot["scopes"] == ["personal", "team", "groupChat"]
    for command_list in bot["commandLists"]:
        titles = [c["title"] for c in command_list["commands"]]
        assert {"whoknows", "huddle", "kb", "expertise", "help"} <= set(titles)
        assert len(titles) <= 10
        assert all(
            len(c["title"]) <= 32 and len(c["description"]) <= 128 for c in command_list["commands"]
        )
    assert manifest["validDomains"] == ["bot.contoso.example"]
    assert manifest["webApplicationInfo"]["id"] == APP_ID
    assert {"name": "ChannelMessage.Read.Group", "type": "Application"} in manifest[
        "authorization"
    ]["permissions"]["resourceSpecific"]

    width, height, pixels = color
    assert (width, height) == (192, 192)
    assert len({pixels[i : i + 3] for i in range(0, len(pixels), 4)}) > 2  # colour, not blank
    width, height, pixels = outline
    assert (width, height) == (32, 32)
    # Teams' outline icon: white only, on a transparent background.
    opaque = [pixels[i : i + 4] for i in range(0, len(pixels), 4) if pixels[i + 3]]
    assert opaque and all(p[:3] == b"\xff\xff\xff" for p in opaque)
    assert pixels[3] == 0  # a transparent corner


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        (["--app-id", "not-a-guid", "--host", "bot.example"], "GUID"),
        (["--app-id", APP_ID, "--host", "bot example/x"], "not a host name"),
        (["--host", "bot.example"], "MICROSOFT_APP_ID"),
    ],
)
def test_a_package_with_bad_ids_is_refused_plainly(
    tmp_path: Path, arguments: list[str], problem: str
) -> None:
    with pytest.raises(SystemExit, match=problem):
        main(["teams-package", *arguments, "-o", str(tmp_path / "x.zip")])
    assert not (tmp_path / "x.zip").exists()
