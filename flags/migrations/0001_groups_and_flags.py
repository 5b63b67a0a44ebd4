from django.db import migrations

GROUPS = ("mod", "bronze", "silver", "gold")


def create(apps, schema_editor):  # type: ignore[no-untyped-def]
    Group = apps.get_model("auth", "Group")
    Flag = apps.get_model("waffle", "Flag")
    for name in GROUPS:
        Group.objects.get_or_create(name=name)
    mod = Group.objects.get(name="mod")
    for key, note in (
        ("aiToolkitTraining", "Enable AI Toolkit as a training engine option"),
        ("sd3Training", "SD 3.5 base models for training"),
    ):
        flag, created = Flag.objects.get_or_create(
            name=key, defaults={"superusers": False, "note": note}
        )
        if created:
            flag.groups.add(mod)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("waffle", "0004_update_everyone_nullbooleanfield"),
    ]
    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
