from django.db import migrations, models


class Migration(migrations.Migration):
    # Creating an index does not rebuild the SQLite table, so the counting triggers of 0005 stay in place.

    dependencies = [
        ('pretix_secrets_import', '0005_poolcount'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='importedsecret',
            index=models.Index(fields=['event', 'secret'], name='importedsecret_search_idx',
                               opclasses=['int8_ops', 'varchar_pattern_ops']),
        ),
    ]
