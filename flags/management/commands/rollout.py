from __future__ import annotations

import getpass
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from flags.models import RolloutChange
from flags.registry import UnknownFeature
from flags.selectors import rollout_status
from flags.services import RolloutError, rollout_set_stage
from flags.stages import STAGES


class Command(BaseCommand):
    help = (
        "Show or change the rollout stage of a feature: "
        "`rollout aiToolkitTraining --stage paid --reason '...' --actor alice`. "
        "Without --stage, prints the stage, who has it and the numbers."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("key")
        parser.add_argument("--stage", choices=STAGES)
        parser.add_argument("--reason", default="", help="required to promote past a failing guard")
        parser.add_argument("--actor", help="username recorded in the audit log")

    def handle(self, *args: Any, **options: Any) -> None:
        key: str = options["key"]
        actor = None
        if options["actor"]:
            try:
                actor = get_user_model().objects.get_by_natural_key(options["actor"])
            except get_user_model().DoesNotExist:
                raise CommandError(f"No user {options['actor']!r}.") from None
        try:
            if options["stage"]:
                change = rollout_set_stage(
                    actor=actor,
                    key=key,
                    to_stage=options["stage"],
                    reason=options["reason"],
                    via=RolloutChange.Via.SHELL,
                    actor_name=f"shell:{getpass.getuser()}",
                )
                note = " (guard overridden)" if change.override_used else ""
                self.stdout.write(f"{key}: {change.from_stage} -> {change.to_stage}{note}")
            status = rollout_status(key=key)
        except (UnknownFeature, RolloutError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"stage: {status.stage} ({status.stage_label})")
        self.stdout.write(f"who: {status.audience}")
        self.stdout.write(f"groups: {', '.join(status.group_names) or '-'}")
        self.stdout.write(f"numbers: {status.guard.explain()}")
        if status.env_override is not None:
            self.stdout.write(
                f"environment override in force: {status.feature.env_name}="
                f"{status.env_override.raw} (the stage has no effect until it is removed)"
            )
