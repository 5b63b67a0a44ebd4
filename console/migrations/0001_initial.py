# The console's rollup models moved here from `training` (they were made by training/0003).
# State only: the tables keep their names (db_table), so an existing database keeps its rows and a
# fresh one gets them from training/0003 as before.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('auth', '0012_alter_user_first_name_max_length'),
        ('training', '0006_console_models_moved'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='RollupState',
                    fields=[
                        ('key', models.CharField(max_length=16, primary_key=True, serialize=False)),
                        ('refreshed_at', models.DateTimeField(blank=True, null=True)),
                        ('changes_since', models.DateTimeField(blank=True, null=True)),
                        ('built_from', models.DateField(blank=True, null=True)),
                        ('history_start', models.DateField(blank=True, null=True)),
                        ('last_duration_ms', models.PositiveIntegerField(default=0)),
                    ],
                    options={
                        'db_table': 'training_rollupstate',
                    },
                ),
                migrations.CreateModel(
                    name='RollupWindowSnapshot',
                    fields=[
                        ('days', models.PositiveSmallIntegerField(primary_key=True, serialize=False)),
                        ('as_of', models.DateField()),
                        ('rows', models.JSONField(default=dict)),
                    ],
                    options={
                        'db_table': 'training_rollupwindowsnapshot',
                    },
                ),
                migrations.CreateModel(
                    name='UserActivityDailyStat',
                    fields=[
                        ('day', models.DateField(primary_key=True, serialize=False)),
                        ('eligible_users', models.PositiveIntegerField(default=0)),
                        ('ai_toolkit_users', models.PositiveIntegerField(default=0)),
                    ],
                    options={
                        'db_table': 'training_useractivitydailystat',
                    },
                ),
                migrations.CreateModel(
                    name='UserTrainingActivity',
                    fields=[
                        ('owner', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='+', serialize=False, to=settings.AUTH_USER_MODEL)),
                        ('last_eligible_at', models.DateTimeField(blank=True, null=True)),
                        ('last_ai_toolkit_at', models.DateTimeField(blank=True, null=True)),
                    ],
                    options={
                        'db_table': 'training_usertrainingactivity',
                    },
                ),
                migrations.CreateModel(
                    name='RunDailyStat',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('day', models.DateField()),
                        ('basis', models.CharField(choices=[('created', 'Created'), ('completed', 'Completed')], max_length=9)),
                        ('engine', models.CharField(max_length=32)),
                        ('base_model', models.CharField(max_length=64)),
                        ('error_code', models.CharField(blank=True, default='', max_length=64)),
                        ('runs', models.PositiveIntegerField(default=0)),
                        ('succeeded', models.PositiveIntegerField(default=0)),
                        ('failed', models.PositiveIntegerField(default=0)),
                        ('expired', models.PositiveIntegerField(default=0)),
                        ('canceled', models.PositiveIntegerField(default=0)),
                        ('cost_runs', models.PositiveIntegerField(default=0)),
                        ('cost_total', models.BigIntegerField(default=0)),
                        ('error_example', models.TextField(blank=True, default='')),
                    ],
                    options={
                        'db_table': 'training_rundailystat',
                        'constraints': [models.UniqueConstraint(fields=('basis', 'day', 'engine', 'base_model', 'error_code'), name='rollup_run_key')],
                    },
                ),
                migrations.CreateModel(
                    name='RunEventDailyStat',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('day', models.DateField()),
                        ('kind', models.CharField(max_length=16)),
                        ('label', models.CharField(blank=True, default='', max_length=16)),
                        ('events', models.PositiveIntegerField()),
                    ],
                    options={
                        'db_table': 'training_runeventdailystat',
                        'constraints': [models.UniqueConstraint(fields=('day', 'kind', 'label'), name='rollup_event_key')],
                    },
                ),
                migrations.CreateModel(
                    name='RunParamDailyStat',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('day', models.DateField()),
                        ('engine', models.CharField(max_length=32)),
                        ('param', models.CharField(max_length=16)),
                        ('value', models.CharField(blank=True, default='', max_length=64)),
                        ('runs', models.PositiveIntegerField(default=0)),
                        ('succeeded', models.PositiveIntegerField(default=0)),
                        ('finished', models.PositiveIntegerField(default=0)),
                    ],
                    options={
                        'db_table': 'training_runparamdailystat',
                        'constraints': [models.UniqueConstraint(fields=('day', 'engine', 'param', 'value'), name='rollup_param_key')],
                    },
                ),
                migrations.CreateModel(
                    name='RunTimingDailyStat',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('day', models.DateField()),
                        ('group_kind', models.CharField(max_length=9)),
                        ('group', models.CharField(max_length=32)),
                        ('metric', models.CharField(max_length=8)),
                        ('samples', models.PositiveIntegerField()),
                        ('points', models.JSONField(default=list)),
                    ],
                    options={
                        'db_table': 'training_runtimingdailystat',
                        'constraints': [models.UniqueConstraint(fields=('day', 'group_kind', 'group', 'metric'), name='rollup_timing_key')],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
