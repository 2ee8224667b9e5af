"""Copies the front-end files the pages use from node_modules into templates/static/vendor/, where they are committed:
the platform and its tests run without npm. `python -m ops.assets` after `npm ci`, when package.json changes.

Each copy is checked against the version package-lock.json pins, so a stale node_modules never lands in the tree.
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "templates" / "static" / "vendor"


@dataclass(frozen=True)
class Asset:
    package: str  # the npm package name
    files: tuple[tuple[str, str], ...]  # (path inside the package, file name under vendor/)


# The default build: element styles plus `.container`; our own components are in renfort.css, on its variables.
ASSETS = (
    Asset("@picocss/pico", (("css/pico.min.css", "pico.min.css"), ("LICENSE.md", "pico.LICENSE.md"))),
)


class AssetError(Exception):
    """node_modules is missing, or does not hold what package-lock.json pins."""


def locked_version(lock: dict[str, object], package: str) -> str:
    packages = lock.get("packages")
    entry = packages.get(f"node_modules/{package}") if isinstance(packages, dict) else None
    if not isinstance(entry, dict) or not isinstance(entry.get("version"), str):
        raise AssetError(f"{package} is not in package-lock.json")
    return str(entry["version"])


def copy_assets(root: Path = ROOT, vendor: Path = VENDOR) -> list[Path]:
    """Copies every asset, after checking them all: either every file is refreshed, or none is."""
    lock = json.loads((root / "package-lock.json").read_text(encoding="utf-8"))
    plan: list[tuple[Path, Path]] = []
    for asset in ASSETS:
        folder = root / "node_modules" / asset.package
        manifest = folder / "package.json"
        if not manifest.is_file():
            raise AssetError(f"{folder} is missing: run `npm ci` first")
        installed = json.loads(manifest.read_text(encoding="utf-8")).get("version")
        wanted = locked_version(lock, asset.package)
        if installed != wanted:
            raise AssetError(f"{asset.package} {installed} is installed, package-lock.json pins {wanted}: run `npm ci`")
        for source, name in asset.files:
            if not (folder / source).is_file():
                raise AssetError(f"{folder / source} is missing")
            plan.append((folder / source, vendor / name))
    vendor.mkdir(parents=True, exist_ok=True)
    for source_path, target in plan:
        shutil.copyfile(source_path, target)
    return [target for _, target in plan]


def main() -> int:
    try:
        copied = copy_assets()
    except AssetError as error:
        print(f"ops.assets: {error}", file=sys.stderr)
        return 1
    for path in copied:
        print(path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
