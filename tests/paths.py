"""Where the tests find the project's shared real data: ``shared/data`` beside the repository."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
