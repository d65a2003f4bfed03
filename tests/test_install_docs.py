"""What the docs tell a newcomer to install exists. booktune is not on PyPI, so every install of it names a folder
(the clone, `pip install .` or `".[extra]"`), never the name `booktune`; and the package names no homepage, as it
has no public repository."""

from __future__ import annotations

import re
from pathlib import Path

from booktune.config import tomllib

ROOT = Path(__file__).resolve().parents[1]
# `pip install booktune`, `pip install "booktune[unsloth]"`, `pip install -U 'booktune @ git+...'`
FROM_PYPI = re.compile(r"""pip install\s+(?:-\S+\s+)*["']?booktune\b""")


def test_every_install_of_booktune_in_the_docs_and_messages_is_from_its_folder():
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "src").rglob("*.py"))]
    found = {str(p.relative_to(ROOT)): FROM_PYPI.findall(p.read_text(encoding="utf-8")) for p in files}
    assert {name: hits for name, hits in found.items() if hits} == {}
    assert FROM_PYPI.search('pip install "booktune[unsloth]"') and not FROM_PYPI.search('pip install ".[unsloth]"')


def test_the_package_names_no_homepage_it_does_not_have():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert "urls" not in project
