from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import DEFAULT_DB_ALIAS

from flags.services import features_sync


class Command(BaseCommand):
    help = (
        "Create the waffle flags the registry declares and the database lacks, the tier groups "
        "and the moderators' admin permissions. Existing flags are never changed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)

    def handle(self, *args: Any, **options: Any) -> None:
        report = features_sync(using=options["database"])
        self.stdout.write(f"groups created: {', '.join(report.created_groups) or 'none'}")
        self.stdout.write(f"flags created: {', '.join(report.created_flags) or 'none'}")
        granted = ", ".join(report.granted_permissions) or "none"
        self.stdout.write(f"permissions granted to mod: {granted}")
