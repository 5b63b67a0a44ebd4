from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from vocabulary.docs_tables import DOC, render


class Command(BaseCommand):
    help = "Regenerate the catalog tables in docs/catalog.md from vocabulary/catalog.py."

    def handle(self, *args: Any, **options: Any) -> None:
        current = DOC.read_text() if DOC.exists() else ""
        DOC.write_text(render(current))
        self.stdout.write(f"wrote {DOC}")
