"""Code blocks of the README, for the tests that run them."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


def write_documented_files(folder: Path) -> dict[str, Path]:
    """Write every README block marked ``<!-- file: PATH -->`` under ``folder``."""
    written = {}
    for name, body in re.findall(r"<!-- file: (\S+) -->\n```\w*\n(.*?)```", README, re.DOTALL):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
        written[name] = path
    return written
