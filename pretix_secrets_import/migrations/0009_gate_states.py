import django.db.models.deletion
from django.db import migrations, models
from django.utils.timezone import now

CHUNK = 2000


def derive_states(apps, schema_editor):
    """
    The gate state of every used secret, from the ticket it is on: what gate.sync_orders would write (its rules are
    repeated here so that this migration keeps doing what it did when the plugin changes).
    """
    ImportedSecret = apps.get_model("pretix_secrets_import", "ImportedSecret")
    GateState = apps.get_model("pretix_secrets_import", "GateState")
    OrderPosition = apps.get_model("pretixbase", "OrderPosition")
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_current_xact_id()::text::bigint")
            tx = cursor.fetchone()[0]
        else:
            cursor.execute("INSERT INTO pretix_secrets_import_feedclock (id, value) VALUES (1, 1)")
            tx = 1
    used = ImportedSecret._default_manager.filter(used=True).order_by("id")
    last = 0
    while True:
        rows = list(used.filter(id__gt=last).values("id", "event_id", "secret", "used_at", "item_id", "variation_id",
                                                    "subevent_id")[:CHUNK])
        if not rows:
            break
        last = rows[-1]["id"]
        positions = {}
        for p in OrderPosition._default_manager.filter(secret__in=[r["secret"] for r in rows]).values(
                "secret", "order__event_id", "positionid", "item_id", "variation_id", "subevent_id", "canceled",
                "order__code", "order__status", "order__require_approval"):
            positions[(p["order__event_id"], p["secret"])] = p
        states = []
        for row in rows:
            p = positions.get((row["event_id"], row["secret"]))
            if p is None:
                state, reason = "reserved", "marked_used"
                ticket = {"order_code": None, "positionid": None, "item_id": row["item_id"],
                          "variation_id": row["variation_id"], "subevent_id": row["subevent_id"]}
            else:
                state, reason = _ticket_state(p["order__status"], p["order__require_approval"], p["canceled"])
                ticket = {"order_code": p["order__code"], "positionid": p["positionid"], "item_id": p["item_id"],
                          "variation_id": p["variation_id"], "subevent_id": p["subevent_id"]}
            states.append(GateState(secret_id=row["id"], event_id=row["event_id"], state=state, reason=reason,
                                    changed=row["used_at"] or now(), tx=tx, **ticket))
        GateState._default_manager.bulk_create(states)


def _ticket_state(status, require_approval, canceled):
    if status == "c":
        return "void", "denied" if require_approval else "canceled"
    if status == "e":
        return "void", "expired"
    if canceled:
        return "void", "canceled"
    return ("valid", "paid") if status == "p" else ("pending", "sold")


class Migration(migrations.Migration):

    dependencies = [
        ("pretix_secrets_import", "0008_alerts_per_product"),
    ]

    operations = [
        migrations.CreateModel(
            name="FeedClock",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False)),
                ("value", models.BigIntegerField(default=0)),
            ],
        ),
        migrations.CreateModel(
            name="GateState",
            fields=[
                ("secret", models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True,
                                                related_name="gate", serialize=False,
                                                to="pretix_secrets_import.importedsecret")),
                ("state", models.CharField(max_length=8)),
                ("reason", models.CharField(max_length=16)),
                ("changed", models.DateTimeField()),
                ("order_code", models.CharField(max_length=16, null=True)),
                ("positionid", models.PositiveIntegerField(null=True)),
                ("item_id", models.BigIntegerField(null=True)),
                ("variation_id", models.BigIntegerField(null=True)),
                ("subevent_id", models.BigIntegerField(null=True)),
                ("tx", models.BigIntegerField()),
                ("event", models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE,
                                            related_name="+", to="pretixbase.event")),
            ],
            options={
                "indexes": [models.Index(fields=["event", "tx", "secret"], name="gatestate_feed_idx"),
                            models.Index(fields=["event", "order_code"], name="gatestate_order_idx")],
            },
        ),
        migrations.RunPython(derive_states, migrations.RunPython.noop),
    ]
