"""`make`'s Debian package check: silent when all is there; as a non-root user, prints the apt command and stops."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHECK = REPO / "envs" / "check_apt.sh"


def run_check(packages: list[str], as_nobody: bool) -> subprocess.CompletedProcess:
    """Run the check on a package list in a world-readable directory (pytest's tmp_path is private to root)."""
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "apt.txt"
        listing.write_text("# comment\n\n" + "\n".join(packages) + "\n")
        Path(tmp).chmod(0o755)
        listing.chmod(0o644)
        cmd = ["bash", str(CHECK), str(listing)]
        if as_nobody and os.geteuid() == 0:
            cmd = ["runuser", "-u", "nobody", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, cwd=tmp, check=False)


def test_installed_packages_pass() -> None:
    proc = run_check(["bash", "coreutils"], as_nobody=False)
    assert proc.returncode == 0 and proc.stdout == "" and proc.stderr == ""


def test_non_root_gets_the_apt_command() -> None:
    assert shutil.which("dpkg-query"), "dpkg-query is part of every Debian system"
    proc = run_check(["bash", "dnalm-no-such-package"], as_nobody=True)
    assert proc.returncode == 1
    assert "sudo apt-get update && sudo apt-get install -y dnalm-no-such-package" in proc.stderr
    assert "bash" not in proc.stderr.split("install -y", 1)[1]


def test_apt_list_names_real_packages() -> None:
    packages = [line.strip() for line in (REPO / "envs" / "apt.txt").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    assert "python3-venv" in packages and "zlib1g-dev" in packages
