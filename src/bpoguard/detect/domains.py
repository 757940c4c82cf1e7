"""The small domain lists detection ships with; nothing is downloaded.

Each list is a handful of well-known names an analyst would recognise. A
workspace's rule file can add competitors and more sites (docs/detect.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

PERSONAL_MAIL = (
    "gmail.com",
    "googlemail.com",
    "yahoo.com",
    "yahoo.co.in",
    "hotmail.com",
    "outlook.com",
    "live.com",
    "aol.com",
    "icloud.com",
    "protonmail.com",
    "proton.me",
    "gmx.com",
    "mail.com",
    "yandex.com",
    "rediffmail.com",
    "zoho.com",
)

# Where a file can be put for anyone with the link, and where leaks are posted.
FILE_SHARING = (
    "dropbox.com",
    "wetransfer.com",
    "mega.nz",
    "mediafire.com",
    "sendspace.com",
    "4shared.com",
    "box.com",
    "drive.google.com",
    "onedrive.live.com",
    "pastebin.com",
    "anonfiles.com",
    "file.io",
    "wikileaks.org",
    "cryptome.org",
)

JOB_SEARCH = (
    "indeed.com",
    "monster.com",
    "careerbuilder.com",
    "glassdoor.com",
    "naukri.com",
    "simplyhired.com",
    "jobhuntersdatabase.com",
    "linkedin.com/jobs",
    "hotjobs.com",
    "craigslist.org",
)

# Spyware and keyloggers: CERT's third scenario downloads one before impersonating a manager.
HACKING = (
    "keylogger",
    "keylog",
    "keystroke",
    "spytech",
    "refog",
    "spectorsoft",
    "actualkeylogger",
    "hackforums",
    "exploit-db.com",
)


def pattern(names: Iterable[str]) -> str:
    """A regular expression matching any of the names as a domain or URL part.

    Kept to the common subset of RE2 (DuckDB) and Java (Spark) regular expressions.
    """
    parts = sorted({re.escape(n.lower()) for n in names if n.strip()})
    if not parts:
        return "$^"  # matches nothing
    return "(" + "|".join(parts) + ")"
