"""The hierfit revision a benchmark result was made with (shared by the benchmark scripts)."""

from pathlib import Path

HERE = Path(__file__).resolve().parent


def revision() -> str:
    """The last commit that changed hierfit/, with a note when hierfit/ has uncommitted edits."""
    import subprocess

    try:
        head = subprocess.run(["git", "log", "-1", "--format=%h", "--", "../hierfit"], cwd=HERE, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "../hierfit"], cwd=HERE, capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown revision"
    return f"commit {head}" + (" + uncommitted changes" if dirty else "")
