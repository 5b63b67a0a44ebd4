# The rollout stage becomes a stored row (StagedFeature), the source of truth. Existing databases
# keep the stage their waffle row expresses today (read as flags.stages.stage_of_flag does).

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.utils import timezone

STAGED = ("aiToolkitTraining",)  # flags.registry: the features with a rollout_engine
PAID_TIERS = {"bronze", "silver", "gold"}


def _stage_of(flag):
    if flag is None or flag.everyone is False:
        return "off"
    if flag.everyone is True or flag.authenticated:
        return "everyone"
    names = set(flag.groups.values_list("name", flat=True))
    if PAID_TIERS <= names:
        return "paid"
    if "mod" in names:
        return "mods"
    return "off"


def store_stages(apps, schema_editor):
    Flag = apps.get_model("waffle", "Flag")
    StagedFeature = apps.get_model("flags", "StagedFeature")
    db = schema_editor.connection.alias
    for key in STAGED:
        flag = Flag.objects.using(db).filter(name=key).first()
        if flag is None:
            continue  # a fresh database: features_sync stores the registry's stage after migrate
        StagedFeature.objects.using(db).get_or_create(
            key=key,
            defaults={
                "stage": _stage_of(flag),
                "changed_at": timezone.now(),
                "changed_by_name": "migration",
                "reason": "stage read from the waffle row when the stage became stored",
            },
        )


class Migration(migrations.Migration):
    dependencies = [
        ("flags", "0002_preferences_and_rollout"),
        ("waffle", "0004_update_everyone_nullbooleanfield"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="StagedFeature",
            fields=[
                ("key", models.CharField(max_length=100, primary_key=True, serialize=False)),
                (
                    "stage",
                    models.CharField(
                        choices=[
                            ("off", "Off"),
                            ("mods", "Moderators"),
                            ("paid", "Paid tiers and moderators"),
                            ("everyone", "Every logged-in user"),
                        ],
                        max_length=16,
                    ),
                ),
                ("changed_at", models.DateTimeField()),
                ("changed_by_name", models.CharField(blank=True, default="", max_length=150)),
                ("reason", models.TextField(blank=True, default="")),
                (
                    "changed_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
        ),
        migrations.RunPython(store_stages, migrations.RunPython.noop),
    ]
