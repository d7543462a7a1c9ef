"""The two UIs as a person sees them: Debian's `chromium` driven headless through its `chromium-driver` by Selenium
(`make test` installs both packages when missing). A page is loaded with its JavaScript, its API calls and its
data, and read once it shows what the test looks for (an explicit wait, not a fixed delay: the single-page UIs
render their lists after several API round trips, which take longer on a busy machine).

Run as root (CI), Chromium needs `--no-sandbox`.
"""
from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest


def _executable(*names: str, package: str) -> str:
    for name in names:
        if shutil.which(name):
            return shutil.which(name)
    pytest.fail(f"{names[0]} is not installed: `make test` installs Debian's {package} package")


@contextmanager
def browser(window: tuple[int, int] = (1400, 900)) -> Iterator["object"]:
    """A headless Chromium (a Selenium WebDriver) at `window` CSS pixels; quit on exit."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = _executable("chromium", "chromium-browser", package="chromium")
    for arg in ("--headless=new", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
                f"--window-size={window[0]},{window[1]}", *(["--no-sandbox"] if os.geteuid() == 0 else [])):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(_executable("chromedriver", package="chromium-driver")),
                              options=options)
    try:
        yield driver
    finally:
        driver.quit()


def page_showing(driver, url: str | None, texts: list[str], timeout: float = 120) -> str:
    """Load `url` (None: stay on the current page) and wait until the rendered page holds every one of `texts`;
    returns the page's visible text. Fails the test with what the page showed when `timeout` seconds pass first."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    if url is not None:
        driver.get(url)

    def shown(d) -> str | bool:
        text = d.find_element(By.TAG_NAME, "body").text
        return text if all(t in text for t in texts) else False

    try:
        return WebDriverWait(driver, timeout, poll_frequency=1).until(shown)
    except TimeoutException:
        pytest.fail(f"{driver.current_url} did not show {texts} within {timeout} s; it showed:\n"
                    + driver.find_element(By.TAG_NAME, "body").text[-3000:])


def click_text(driver, text: str) -> None:
    """Click the element whose own text is `text` (a tab, a button)."""
    from selenium.webdriver.common.by import By

    driver.find_element(By.XPATH, f"//*[text()[normalize-space(.)='{text}']]").click()


def screenshot(driver, path: Path) -> Path:
    """A PNG of what `driver` shows now, at `path`."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(path)), f"no screenshot written to {path}"
    return Path(path)
