"""Demo accounts for a fresh install: a moderator, a gold member and a plain user."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand

DEMO_USERS = (
    # username, password, groups, staff (moderators work in Django admin)
    ("mod", "mod-demo-pass", ("mod",), True),
    ("gold", "gold-demo-pass", ("gold",), False),
    ("user", "user-demo-pass", (), False),
)
TIER_GROUPS = ("mod", "bronze", "silver", "gold")


class Command(BaseCommand):
    help = "Create the tier groups and the demo users (idempotent) and print their logins."

    def handle(self, *args: Any, **options: Any) -> None:
        for name in TIER_GROUPS:
            Group.objects.get_or_create(name=name)
        for username, password, groups, staff in DEMO_USERS:
            user, created = User.objects.get_or_create(username=username)
            if created:
                user.set_password(password)
            user.is_staff = staff
            user.save()
            user.groups.set(Group.objects.filter(name__in=groups))
        self.stdout.write("Demo logins (username / password):")
        for username, password, groups, _ in DEMO_USERS:
            role = ", ".join(groups) or "plain user"
            self.stdout.write(f"  {username:<5} / {password:<15} ({role})")
