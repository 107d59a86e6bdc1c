
import django.db.models.deletion
import pretix.base.models.base
import pretix_secrets_import.models
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('pretixbase', '0311_fix_unshredded_invoices'),
    ]

    operations = [
        migrations.CreateModel(
            name='ImportedSecret',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False)),
                ('secret', models.CharField(max_length=255)),
                ('used', models.BooleanField(default=False)),
                ('used_at', models.DateTimeField(blank=True, null=True)),
                ('created', models.DateTimeField(auto_now_add=True)),
                ('modified', models.DateTimeField(auto_now=True)),
                ('event', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='imported_secrets', to='pretixbase.event')),
                ('item', models.ForeignKey(null=True, on_delete=pretix_secrets_import.models.keep_used_delete_unused, related_name='+', to='pretixbase.item')),
                ('organizer', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='pretixbase.organizer')),
                ('subevent', models.ForeignKey(null=True, on_delete=pretix_secrets_import.models.keep_used_delete_unused, related_name='+', to='pretixbase.subevent')),
                ('variation', models.ForeignKey(null=True, on_delete=pretix_secrets_import.models.keep_used_delete_unused, related_name='+', to='pretixbase.itemvariation')),
            ],
            options={
                'ordering': ('id',),
                'indexes': [models.Index(condition=models.Q(('used', False)), fields=['event', 'item', 'variation', 'subevent', 'id'], name='importedsecret_alloc_idx'), models.Index(fields=['event', 'id'], name='importedsecret_event_idx'), models.Index(fields=['event', 'used', 'id'], name='importedsecret_event_used_idx')],
                'constraints': [models.UniqueConstraint(fields=('organizer', 'secret'), name='importedsecret_organizer_secret_uniq')],
            },
            bases=(models.Model, pretix.base.models.base.LoggingMixin),
        ),
    ]
