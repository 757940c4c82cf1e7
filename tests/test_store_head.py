"""The schema head and revision are read without Alembic, and agree with Alembic."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text

from bpoguard.errors import StoreError
from bpoguard.store import Store
from bpoguard.store._store import MIGRATIONS, script_head


def _alembic_head(location: Path) -> str | None:
    cfg = Config()
    cfg.set_main_option("script_location", str(location))
    return ScriptDirectory.from_config(cfg).get_current_head()


def test_head_is_alembics_head() -> None:
    assert script_head(MIGRATIONS / "versions") == _alembic_head(MIGRATIONS)
    assert Store("sqlite://").head() == _alembic_head(MIGRATIONS)


def _script(folder: Path, name: str, revision: str, down: str) -> None:
    (folder / f"{name}.py").write_text(
        textwrap.dedent(
            f'''\
            """{name}"""
            from alembic import op

            revision: str = "{revision}"
            down_revision = {down}
            branch_labels = None
            depends_on = None


            def upgrade() -> None:
                revision = "not this one"


            def downgrade() -> None:
                pass
            '''
        ),
        encoding="utf-8",
    )


def _scripts(tmp_path: Path) -> Path:
    location = tmp_path / "migrations"
    (location / "versions").mkdir(parents=True)
    (location / "script.py.mako").write_text("", encoding="utf-8")
    (location / "env.py").write_text("", encoding="utf-8")
    return location


def test_a_merge_revision_is_the_head(tmp_path: Path) -> None:
    location = _scripts(tmp_path)
    versions = location / "versions"
    _script(versions, "a", "rev_a", "None")
    _script(versions, "b", "rev_b", '"rev_a"')
    _script(versions, "c", "rev_c", '"rev_a"')
    _script(versions, "m", "rev_m", '("rev_b", "rev_c")')
    assert script_head(versions) == "rev_m" == _alembic_head(location)


def test_two_heads_are_refused(tmp_path: Path) -> None:
    location = _scripts(tmp_path)
    versions = location / "versions"
    _script(versions, "a", "rev_a", "None")
    _script(versions, "b", "rev_b", '"rev_a"')
    _script(versions, "c", "rev_c", '"rev_a"')
    with pytest.raises(StoreError, match="2 heads"):
        script_head(versions)


def test_revision_reads_the_version_table(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'x.db'}")
    assert store.revision() is None  # no version table yet
    store.migrate("0002_ledger")
    assert store.revision() == "0002_ledger"
    store.migrate()
    assert store.revision() == store.head()
    with store.engine.begin() as conn:
        conn.execute(text("INSERT INTO alembic_version (version_num) VALUES ('other')"))
    with pytest.raises(StoreError, match="several schema revisions"):
        store.revision()
    store.dispose()


def test_opening_a_workspace_does_not_import_alembic(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    code = textwrap.dedent(
        f"""\
        import sys
        from pathlib import Path
        from bpoguard import workspace
        workspace.init(Path({str(home)!r}))
        for name in [n for n in sys.modules if n == "alembic" or n.startswith("alembic.")]:
            del sys.modules[name]
        with workspace.Workspace.open(Path({str(home)!r})) as ws:
            ws.store.require_current()
        print("alembic" in sys.modules)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "False"
