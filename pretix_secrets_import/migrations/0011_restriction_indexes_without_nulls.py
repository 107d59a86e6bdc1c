from django.db import migrations, models

import pretix_secrets_import.models

SECRETS = "pretix_secrets_import_importedsecret"
# the names Django gave the foreign keys' indexes (0001), the same on PostgreSQL and SQLite
OLD_INDEXES = {"item": "item_id_df4a255a", "variation": "variation_id_31f7d2d7", "subevent": "subevent_id_ba857fb0"}
TARGETS = {"item": "pretixbase.item", "variation": "pretixbase.itemvariation", "subevent": "pretixbase.subevent"}


def _field(name, verbose_name):
    return models.ForeignKey(blank=True, db_index=False, null=True,
                             on_delete=pretix_secrets_import.models.keep_used_delete_unused, related_name='+',
                             to=TARGETS[name], verbose_name=verbose_name)


class Migration(migrations.Migration):
    # The foreign keys' indexes are dropped by name instead of altering the fields: on SQLite Django would rebuild the
    # table for that, which drops the counting triggers of 0005. Creating an index rebuilds nothing.

    dependencies = [
        ('pretix_secrets_import', '0010_gate_answers'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(model_name='importedsecret', name='item', field=_field('item', 'Product')),
                migrations.AlterField(model_name='importedsecret', name='variation',
                                      field=_field('variation', 'Product variation')),
                migrations.AlterField(model_name='importedsecret', name='subevent', field=_field('subevent', 'Date')),
            ],
            database_operations=[
                migrations.RunSQL(f'DROP INDEX "{SECRETS}_{index}"',
                                  reverse_sql=f'CREATE INDEX "{SECRETS}_{index}" ON "{SECRETS}" ("{name}_id")')
                for name, index in OLD_INDEXES.items()
            ],
        ),
        *(migrations.AddIndex(
            model_name='importedsecret',
            index=models.Index(condition=models.Q((f'{name}__isnull', False)), fields=[name],
                               name=f'importedsecret_{name}_idx'),
        ) for name in ('item', 'variation', 'subevent')),
    ]
