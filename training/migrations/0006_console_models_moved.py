# The rollup models moved to the `console` app (console/0001). State only: their tables stay,
# under the same names, and belong to console from here on.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("training", "0005_run_experiment"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(
                    name="RollupState",
                ),
                migrations.DeleteModel(
                    name="RollupWindowSnapshot",
                ),
                migrations.DeleteModel(
                    name="RunDailyStat",
                ),
                migrations.DeleteModel(
                    name="RunEventDailyStat",
                ),
                migrations.DeleteModel(
                    name="RunParamDailyStat",
                ),
                migrations.DeleteModel(
                    name="RunTimingDailyStat",
                ),
                migrations.DeleteModel(
                    name="UserActivityDailyStat",
                ),
                migrations.DeleteModel(
                    name="UserTrainingActivity",
                ),
            ],
            database_operations=[],
        ),
    ]
