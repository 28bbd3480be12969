"""A built firmware as plain data that travels between machines by its content hash.

A lab's workers have state folders of their own: the host-only job that built an
ELF (farm.scale.jobs.prepare_job) may run on another machine than the board job that
flashes it. :func:`export_build` packs a cached build (its build key, the content hash
of everything that went into it, its manifest and the ELF's bytes with their
sha256); :func:`install_build` puts it into another state folder's build cache under
the same key, so that farm.build.firmware.build_firmware finds it there and nothing
is built twice. An artifact whose bytes do not match its sha256 is refused; one that
is already in the cache is left alone (same key, same inputs, same ELF).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from farm.build.locks import locked


class ArtifactError(RuntimeError):
    """A shipped build that cannot be installed (its bytes are not the ones its hash names)."""


@dataclass(frozen=True)
class BuildArtifact:
    """A cached build, by value: where it lives in a state folder (relative), its manifest, its ELF."""

    key: str  # farm.build.firmware.build_key: the content hash of every input
    project: str  # the build's folder, relative to the state folder ("builds/<key prefix>")
    elf_path: str  # the ELF, relative to the build's folder
    manifest_name: str
    manifest: str
    elf: bytes
    elf_sha256: str

    @property
    def size(self) -> int:
        return len(self.elf)


def export_build(build: Any, state: Path) -> BuildArtifact | None:
    """The cached build ``build`` (farm.build.firmware.FirmwareBuild) of ``state`` as an
    artifact; None when it is not under ``state`` or has no manifest next to it."""
    elf = Path(build.elf)
    project = next((p for p in elf.parents if p.parent == state / "builds"), None)
    if project is None:
        return None
    manifests = [p for p in project.glob("*.json") if p.is_file()]
    manifest = next((p for p in manifests if json.loads(p.read_text()).get("key") == build.firmware_hash), None)
    if manifest is None:
        return None
    data = elf.read_bytes()
    return BuildArtifact(key=str(build.firmware_hash), project=str(project.relative_to(state)),
                         elf_path=str(elf.relative_to(project)), manifest_name=manifest.name,
                         manifest=manifest.read_text(), elf=data, elf_sha256=hashlib.sha256(data).hexdigest())


def install_build(artifact: BuildArtifact, state: Path) -> bool:
    """Put ``artifact`` into ``state``'s build cache; True when installed, False when the cache
    already held that build. Written into a folder of its own, then renamed into place, under
    the lock farm.build.firmware.build_firmware takes for the same build."""
    project = state / artifact.project
    if (project / artifact.manifest_name).is_file() and (project / artifact.elf_path).is_file():
        return False
    if hashlib.sha256(artifact.elf).hexdigest() != artifact.elf_sha256:
        raise ArtifactError(f"build {artifact.key[:20]}: its ELF's bytes do not match sha256 {artifact.elf_sha256}")
    project.parent.mkdir(parents=True, exist_ok=True)
    with locked(project.parent / f".{project.name}.lock"):  # the lock build_firmware takes for this build
        if (project / artifact.manifest_name).is_file() and (project / artifact.elf_path).is_file():
            return False  # built or installed here meanwhile
        tmp = project.with_name(f".{project.name}.install-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / artifact.elf_path).parent.mkdir(parents=True)
        (tmp / artifact.elf_path).write_bytes(artifact.elf)
        manifest = json.loads(artifact.manifest)
        manifest["installed_from"] = "a shipped artifact (built on another machine)"
        (tmp / artifact.manifest_name).write_text(json.dumps(manifest, indent=2))
        shutil.rmtree(project, ignore_errors=True)  # a half-made build folder: replaced by the finished one
        tmp.rename(project)
    return True
