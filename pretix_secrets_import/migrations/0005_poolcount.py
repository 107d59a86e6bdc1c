from django.db import migrations, models

SECRETS = "pretix_secrets_import_importedsecret"
COUNTS = "pretix_secrets_import_poolcount"
GROUP = "event_id, COALESCE(item_id, 0), COALESCE(variation_id, 0), COALESCE(subevent_id, 0)"
COLUMNS = "(event_id, item_id, variation_id, subevent_id, total, unused)"

# PostgreSQL: one statement-level trigger per kind of write adds one row of differences per group the statement
# touched, from its transition tables. Inserting never conflicts, so concurrent sales do not lock each other out.
POSTGRESQL = [
    f"""
    CREATE FUNCTION pretix_secrets_import_count() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            INSERT INTO {COUNTS} {COLUMNS}
            SELECT {GROUP}, COUNT(*), COUNT(*) FILTER (WHERE NOT used) FROM new_rows GROUP BY 1, 2, 3, 4;
        ELSIF TG_OP = 'DELETE' THEN
            INSERT INTO {COUNTS} {COLUMNS}
            SELECT {GROUP}, -COUNT(*), -COUNT(*) FILTER (WHERE NOT used) FROM old_rows GROUP BY 1, 2, 3, 4;
        ELSE
            INSERT INTO {COUNTS} {COLUMNS}
            SELECT event_id, item_id, variation_id, subevent_id, SUM(total), SUM(unused) FROM (
                SELECT {GROUP}, -1, CASE WHEN used THEN 0 ELSE -1 END FROM old_rows
                UNION ALL
                SELECT {GROUP}, 1, CASE WHEN used THEN 0 ELSE 1 END FROM new_rows
            ) AS changes (event_id, item_id, variation_id, subevent_id, total, unused)
            GROUP BY 1, 2, 3, 4 HAVING SUM(total) <> 0 OR SUM(unused) <> 0;
        END IF;
        RETURN NULL;
    END $$
    """,
    f"CREATE TRIGGER pretix_secrets_import_count_insert AFTER INSERT ON {SECRETS} "
    f"REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION pretix_secrets_import_count()",
    f"CREATE TRIGGER pretix_secrets_import_count_update AFTER UPDATE ON {SECRETS} "
    f"REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT "
    f"EXECUTE FUNCTION pretix_secrets_import_count()",
    f"CREATE TRIGGER pretix_secrets_import_count_delete AFTER DELETE ON {SECRETS} "
    f"REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION pretix_secrets_import_count()",
]
POSTGRESQL_REVERSE = [
    f"DROP TRIGGER pretix_secrets_import_count_insert ON {SECRETS}",
    f"DROP TRIGGER pretix_secrets_import_count_update ON {SECRETS}",
    f"DROP TRIGGER pretix_secrets_import_count_delete ON {SECRETS}",
    "DROP FUNCTION pretix_secrets_import_count()",
]


def _sqlite_row(row):
    return (f"event_id = {row}.event_id AND item_id = COALESCE({row}.item_id, 0) "
            f"AND variation_id = COALESCE({row}.variation_id, 0) AND subevent_id = COALESCE({row}.subevent_id, 0)")


def _sqlite_add(row, sign):
    # SQLite has only row-level triggers, and its writers never run concurrently: one row per group, updated in place.
    ensure = (f"INSERT INTO {COUNTS} {COLUMNS} SELECT {row}.event_id, COALESCE({row}.item_id, 0), "
              f"COALESCE({row}.variation_id, 0), COALESCE({row}.subevent_id, 0), 0, 0 "
              f"WHERE NOT EXISTS (SELECT 1 FROM {COUNTS} WHERE {_sqlite_row(row)});") if sign > 0 else ""
    return (f"{ensure} UPDATE {COUNTS} SET total = total {'+' if sign > 0 else '-'} 1, "
            f"unused = unused {'+' if sign > 0 else '-'} (NOT {row}.used) WHERE {_sqlite_row(row)};")


SQLITE = [
    f"CREATE TRIGGER pretix_secrets_import_count_insert AFTER INSERT ON {SECRETS} BEGIN {_sqlite_add('NEW', 1)} END",
    f"CREATE TRIGGER pretix_secrets_import_count_update AFTER UPDATE OF event_id, used, item_id, variation_id, "
    f"subevent_id ON {SECRETS} BEGIN {_sqlite_add('OLD', -1)} {_sqlite_add('NEW', 1)} END",
    f"CREATE TRIGGER pretix_secrets_import_count_delete AFTER DELETE ON {SECRETS} BEGIN {_sqlite_add('OLD', -1)} END",
]
SQLITE_REVERSE = [
    "DROP TRIGGER pretix_secrets_import_count_insert",
    "DROP TRIGGER pretix_secrets_import_count_update",
    "DROP TRIGGER pretix_secrets_import_count_delete",
]


def create_triggers(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor not in ("postgresql", "sqlite"):
        raise NotImplementedError("pretix-secrets-import supports PostgreSQL and SQLite, as pretix does.")
    with connection.cursor() as cursor:
        # the counts of the secrets stored so far, then the triggers keep them
        cursor.execute(
            f"INSERT INTO {COUNTS} {COLUMNS} SELECT {GROUP}, COUNT(*), "
            f"SUM(CASE WHEN used THEN 0 ELSE 1 END) FROM {SECRETS} GROUP BY 1, 2, 3, 4"
        )
        for sql in POSTGRESQL if connection.vendor == "postgresql" else SQLITE:
            cursor.execute(sql)


def drop_triggers(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        for sql in POSTGRESQL_REVERSE if schema_editor.connection.vendor == "postgresql" else SQLITE_REVERSE:
            cursor.execute(sql)


class Migration(migrations.Migration):

    dependencies = [
        ('pretix_secrets_import', '0004_alloc_index_without_nulls'),
        ('pretixbase', '0311_fix_unshredded_invoices'),
    ]

    operations = [
        migrations.CreateModel(
            name='PoolCount',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False)),
                ('event_id', models.BigIntegerField()),
                ('item_id', models.BigIntegerField()),
                ('variation_id', models.BigIntegerField()),
                ('subevent_id', models.BigIntegerField()),
                ('total', models.BigIntegerField()),
                ('unused', models.BigIntegerField()),
            ],
            options={
                'indexes': [models.Index(fields=['event_id', 'item_id', 'variation_id', 'subevent_id'],
                                         name='poolcount_group_idx')],
            },
        ),
        migrations.RunPython(create_triggers, drop_triggers),
    ]
