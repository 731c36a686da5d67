"""The browser tests must leave their xdist worker able to run asyncio code afterwards."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.xdist_group("browser")


def test_asyncio_runs_after_a_browser_module(tmp_path: Path) -> None:
    (tmp_path / "test_a_browser.py").write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from browser import chromium  # noqa: F401

        def test_browser(chromium):
            page = chromium.new_page()
            page.set_content("<p>hi</p>")
            assert page.inner_text("p") == "hi"
            page.close()
    """))
    (tmp_path / "test_b_async.py").write_text(textwrap.dedent("""
        import asyncio

        def test_asyncio_run_works():
            async def answer():
                return 42
            assert asyncio.run(answer()) == 42
    """))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
         "-n0", str(tmp_path)], capture_output=True, text=True, timeout=240, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "2 passed" in done.stdout
    assert asyncio.run(asyncio.sleep(0, "still fine here")) == "still fine here"
