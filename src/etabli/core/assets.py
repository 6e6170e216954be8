"""Front-end libraries from the npm registry, fetched at set-up and served as static files.

Nothing third-party is committed: `frontend.json` names each package, its version, tarball and
published sha512 integrity, and which files to keep. The files land in VENDOR_STATIC_DIR.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
import urllib.request
from pathlib import Path

MANIFEST = Path(__file__).resolve().parent.parent / "frontend.json"


class AssetError(Exception):
    pass


def _manifest() -> list[dict]:
    return json.loads(MANIFEST.read_text())["packages"]


def _stamp(dest: Path) -> Path:
    return dest / ".frontend.json.sha256"


def _manifest_digest() -> str:
    return hashlib.sha256(MANIFEST.read_bytes()).hexdigest()


def up_to_date(dest: Path) -> bool:
    stamp = _stamp(dest)
    if not stamp.exists() or stamp.read_text() != _manifest_digest():
        return False
    return all((dest / target).exists()
               for pkg in _manifest() for target in pkg["files"].values())


def _verify(data: bytes, integrity: str, name: str) -> None:
    algo, _, expected = integrity.partition("-")
    if algo != "sha512":
        raise AssetError(f"{name}: unsupported integrity algorithm {algo}")
    actual = base64.b64encode(hashlib.sha512(data).digest()).decode()
    if actual != expected:
        raise AssetError(f"{name}: the downloaded tarball does not match its integrity hash")


def install(dest: Path, *, force: bool = False, timeout: int = 60) -> list[str]:
    """Download and unpack every package of the manifest into `dest`; returns files written."""
    if not force and up_to_date(dest):
        return []
    written = []
    for pkg in _manifest():
        label = f"{pkg['name']}@{pkg['version']}"
        try:
            with urllib.request.urlopen(pkg["tarball"], timeout=timeout) as response:
                data = response.read()
        except OSError as exc:
            raise AssetError(f"{label}: cannot download {pkg['tarball']} ({exc})") from exc
        _verify(data, pkg["integrity"], label)
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for member_name, target in pkg["files"].items():
                member = tar.getmember(member_name)
                extracted = tar.extractfile(member)
                if extracted is None:
                    raise AssetError(f"{label}: {member_name} is not a file")
                path = dest / target
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(extracted.read())
                written.append(str(path))
    _stamp(dest).write_text(_manifest_digest())
    return written
