"""A stand-in for the user's browser, run by Python's webbrowser through
$BROWSER ("python tests/fake_browser.py %s"): it opens the address on the
sandbox X (DMTOOL_TEST_WORLD), which approves and redirects to dmtool's
listener, follows that redirect over a real loopback socket, and writes the
page dmtool answered to DMTOOL_TEST_BROWSER_PAGE."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main() -> None:
    url = sys.argv[1]
    from tests.xnet import browser

    with browser(os.environ["DMTOOL_TEST_WORLD"]) as session:
        page = session.get(url, timeout=60)
    Path(os.environ["DMTOOL_TEST_BROWSER_PAGE"]).write_text(f"{page.status_code}\n{page.text}")


if __name__ == "__main__":
    main()
