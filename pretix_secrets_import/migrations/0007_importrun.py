import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('pretix_secrets_import', '0006_search_index'),
        ('pretixbase', '0311_fix_unshredded_invoices'),
    ]

    operations = [
        migrations.CreateModel(
            name='ImportRun',
            fields=[
                ('id', models.UUIDField(primary_key=True, serialize=False)),
                ('event', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+',
                                            to='pretixbase.event')),
                ('upload', models.UUIDField()),
                ('state', models.CharField(default='queued', max_length=16)),
                ('options', models.JSONField(default=dict)),
                ('outcome', models.JSONField(null=True)),
                ('created', models.DateTimeField(auto_now_add=True)),
                ('started', models.DateTimeField(null=True)),
            ],
            options={
                'indexes': [models.Index(fields=['upload', 'created'], name='importrun_upload_idx')],
                'constraints': [models.UniqueConstraint(
                    condition=models.Q(('state__in', ('queued', 'running', 'imported'))), fields=('upload',),
                    name='importrun_one_active_per_upload',
                )],
            },
        ),
    ]
