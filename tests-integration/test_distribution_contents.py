"""What each published artifact carries: the license, a self-contained description, classifiers,
and nothing of the repository's own housekeeping."""

from __future__ import annotations

import re
import tarfile
import zipfile
from email.message import Message
from email.parser import Parser
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Built, Venv

ROOT = Path(__file__).resolve().parent.parent
LICENSE = (ROOT / "LICENSE").read_text(encoding="utf-8")
KEYS = ["worker", "envelope", "meta", "cli"]  # as the `built` fixture names them


def _wheel_metadata(wheel: Path) -> tuple[Message, dict[str, str]]:
    """The wheel's METADATA and the text of each file under its dist-info ``licenses/``."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(archive.read(metadata_name).decode("utf-8"))
        licenses = {
            n.split(".dist-info/licenses/")[1]: archive.read(n).decode("utf-8")
            for n in names
            if ".dist-info/licenses/" in n
        }
    return metadata, licenses


def _sdist_files(sdist: Path) -> dict[str, bytes]:
    """Every regular file of the sdist, by its path below the sdist's top folder."""
    with tarfile.open(sdist) as archive:
        return {
            member.name.split("/", 1)[1]: archive.extractfile(member).read()  # type: ignore[union-attr]
            for member in archive.getmembers()
            if member.isfile()
        }


def test_the_repository_states_the_license_in_every_distribution_folder(
    distributions: dict[str, str],
) -> None:
    assert LICENSE.startswith(
        "MIT License\n\nCopyright (c) 2026 The juniper-cascor-protocol authors"
    )
    assert sorted(distributions) == sorted(KEYS)
    for folder in distributions.values():
        # hatchling roots each sdist at its package folder, so each holds its own copy.
        assert (ROOT / "packages" / folder / "LICENSE").read_text(encoding="utf-8") == LICENSE


@pytest.mark.parametrize("key", KEYS)
def test_wheel_carries_the_license_and_says_so(key: str, built: dict[str, Built]) -> None:
    metadata, licenses = _wheel_metadata(built[key].wheel)
    assert licenses == {"LICENSE": LICENSE}
    assert metadata["License-Expression"] == "MIT"
    assert metadata.get_all("License-File") == ["LICENSE"]


@pytest.mark.parametrize("key", KEYS)
def test_wheel_classifiers_state_maturity_and_audience(key: str, built: dict[str, Built]) -> None:
    classifiers = _wheel_metadata(built[key].wheel)[0].get_all("Classifier") or []
    assert [c for c in classifiers if c.startswith("Development Status ::")] == [
        "Development Status :: 4 - Beta"
    ]
    assert "Intended Audience :: Developers" in classifiers


@pytest.mark.parametrize("key", KEYS)
def test_sdist_carries_the_license_and_no_repository_housekeeping(
    key: str, built: dict[str, Built]
) -> None:
    files = _sdist_files(built[key].sdist)
    assert files["LICENSE"].decode("utf-8") == LICENSE
    assert {"PKG-INFO", "README.md", "pyproject.toml"} <= set(files)
    assert not [name for name in files if Path(name).name.startswith(".")]


@pytest.mark.parametrize("key", KEYS)
def test_long_description_stands_on_its_own(key: str, built: dict[str, Built]) -> None:
    metadata, _ = _wheel_metadata(built[key].wheel)
    description = metadata.get_payload()
    assert isinstance(description, str)
    # A package page has no link back to the repository: nothing may be left to its README.
    assert "repository README" not in description
    for heading in ("## Example", "## License"):
        assert heading in description
    assert "```python" in description
    assert "limits" in description.lower()


@pytest.mark.parametrize("key", KEYS)
def test_description_examples_run_with_only_that_distribution_and_its_dependencies(
    key: str, built: dict[str, Built], request: pytest.FixtureRequest
) -> None:
    # The meta-package's "only" is it with its parts, the tool's is `[cli]`; the others' is
    # their wheel alone.
    venv: Venv = request.getfixturevalue(f"{key}_venv")
    description = _wheel_metadata(built[key].wheel)[0].get_payload()
    assert isinstance(description, str)
    examples = re.findall(r"```python\n(.*?)```", description, re.DOTALL)
    assert examples
    for code in examples:
        venv.run_python(code)
