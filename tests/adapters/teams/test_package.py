"""`whoknows teams-package`: a zip Teams accepts, with the manifest fields and icon sizes.

The manifest is also checked against the JSON schema Microsoft publishes for its version,
bundled in `@microsoft/app-manifest` (tests/conformance/validate.cjs), and the icons are
read by Pillow."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from adapters.cli import main
from tests.adapters.teams.fake_teams import APP_ID
from tests.conformance.microsoft import Validators, microsoft_fixture  # noqa: F401  (a fixture)

ICON_SIZES = {"color.png": (192, 192), "outline.png": (32, 32)}


def icon_problems(name: str, data: bytes) -> list[str]:
    """Teams' icon rules: PNG, a 192×192 colour icon, and a 32×32 outline in white alone
    on a transparent background (Teams tints it). Read by Pillow (every chunk's CRC)."""
    try:
        icon = Image.open(io.BytesIO(data))
        icon.load()
    except (OSError, SyntaxError) as error:
        return [f"{name}: not an image Pillow reads: {error}"]
    if icon.format != "PNG" or icon.mode != "RGBA":
        return [f"{name}: {icon.format} {icon.mode}, not an RGBA PNG"]
    problems = []
    if icon.size != ICON_SIZES[name]:
        problems.append(f"{name}: {icon.size}, not {ICON_SIZES[name]}")
    pixels = np.asarray(icon)
    if name == "color.png" and len(np.unique(pixels[:, :, :3].reshape(-1, 3), axis=0)) <= 2:
        problems.append(f"{name}: blank")
    if name == "outline.png":
        opaque = pixels[pixels[:, :, 3] > 0][:, :3]
        if not len(opaque) or not (opaque == 255).all():
            problems.append(f"{name}: not white alone where it is not transparent")
        if pixels[:, :, 3].min() != 0:
            problems.append(f"{name}: no transparent background")
    return problems


def package(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, bytes]:
    """`whoknows teams-package` run as a person would: the files in the zip it writes."""
    output = tmp_path / "whoknows.zip"
    arguments = ["--app-id", APP_ID, "--host", "bot.contoso.example", "-o", str(output)]
    assert main(["teams-package", *arguments]) == 0
    assert "upload it in Teams" in capsys.readouterr().out
    with zipfile.ZipFile(output) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_the_package_holds_a_valid_manifest_and_icons(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = package(tmp_path, capsys)
    assert sorted(files) == ["color.png", "manifest.json", "outline.png"]
    manifest = json.loads(files["manifest.json"])

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

    for name in ICON_SIZES:
        assert icon_problems(name, files[name]) == []


def test_icons_broken_on_purpose_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = package(tmp_path, capsys)

    def png(image: Image.Image) -> bytes:
        out = io.BytesIO()
        image.save(out, "PNG")
        return out.getvalue()

    outline = Image.open(io.BytesIO(files["outline.png"])).convert("RGBA")
    tinted = outline.copy()
    tinted.putpixel((16, 16), (255, 0, 0, 255))
    assert icon_problems("outline.png", png(tinted))
    assert icon_problems("outline.png", png(outline.convert("RGB").convert("RGBA")))  # opaque
    assert icon_problems("outline.png", png(outline.resize((48, 48))))
    assert icon_problems("color.png", png(Image.new("RGBA", (192, 192), (75, 83, 188, 255))))
    damaged = bytearray(files["color.png"])
    damaged[60] ^= 0xFF  # a byte of the image data: its chunk's CRC no longer matches
    assert icon_problems("color.png", bytes(damaged))


def test_the_manifest_is_valid_against_microsofts_schema_for_its_version(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], microsoft: Validators
) -> None:
    """@microsoft/app-manifest's schema for manifestVersion 1.17, checked as that
    package checks it (ajv in JSON Schema draft-04 mode, with its formats)."""
    manifest = json.loads(package(tmp_path, capsys)["manifest.json"])
    assert microsoft.teams_manifest_problems(manifest) == []
    broken = json.loads(json.dumps(manifest))
    broken["bots"][0]["scopes"].append("everywhere")
    del broken["developer"]["privacyUrl"]
    broken["name"]["short"] = "w" * 31
    problems = microsoft.teams_manifest_problems(broken)
    assert len(problems) >= 3, problems
    assert microsoft.teams_manifest_problems({**manifest, "manifestVersion": "0.9"}) == [
        'no bundled schema for manifestVersion "0.9"'
    ]


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
