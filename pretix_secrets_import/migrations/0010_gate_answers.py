import django.db.models.deletion
from django.db import migrations, models




def first_refusals(apps, schema_editor):
    """
    A first check-in answer for the states stored so far; the gate feed reads these only for states that changed
    after a list's first read, which derives them anew (gate.py), so this is a safe start, not the final word.
    """
    GateState = apps.get_model("pretix_secrets_import", "GateState")
    GateState.objects.filter(state__in=("reserved",)).update(refusal="invalid")
    GateState.objects.filter(state="void", reason__in=("replaced", "deleted")).update(refusal="invalid")
    GateState.objects.filter(state="void").exclude(reason__in=("replaced", "deleted")).update(refusal="canceled")


class Migration(migrations.Migration):

    dependencies = [
        ('pretix_secrets_import', '0009_gate_states'),
        ('pretixbase', '0311_fix_unshredded_invoices'),
    ]

    operations = [
        migrations.CreateModel(
            name='ListVersion',
            fields=[
                ('checkinlist', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='+', serialize=False, to='pretixbase.checkinlist')),
                ('fingerprint', models.CharField(max_length=64)),
                ('since', models.BigIntegerField()),
            ],
        ),
        migrations.AddField(
            model_name='gatestate',
            name='refusal',
            field=models.CharField(max_length=16, null=True),
        ),
        migrations.AddField(
            model_name='gatestate',
            name='valid_from',
            field=models.DateTimeField(null=True),
        ),
        migrations.AddField(
            model_name='gatestate',
            name='valid_if_pending',
            field=models.BooleanField(db_default=False, default=False),
        ),
        migrations.AddField(
            model_name='gatestate',
            name='valid_until',
            field=models.DateTimeField(null=True),
        ),
        migrations.CreateModel(
            name='TicketState',
            fields=[
                ('state', models.CharField(max_length=8)),
                ('reason', models.CharField(max_length=16)),
                ('changed', models.DateTimeField()),
                ('order_code', models.CharField(max_length=16, null=True)),
                ('positionid', models.PositiveIntegerField(null=True)),
                ('item_id', models.BigIntegerField(null=True)),
                ('variation_id', models.BigIntegerField(null=True)),
                ('subevent_id', models.BigIntegerField(null=True)),
                ('refusal', models.CharField(max_length=16, null=True)),
                ('valid_if_pending', models.BooleanField(db_default=False, default=False)),
                ('valid_from', models.DateTimeField(null=True)),
                ('valid_until', models.DateTimeField(null=True)),
                ('tx', models.BigIntegerField()),
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('secret', models.CharField(max_length=255)),
                ('event', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='pretixbase.event')),
            ],
            options={
                'indexes': [models.Index(fields=['event', 'tx', 'id'], name='ticketstate_feed_idx'), models.Index(fields=['event', 'order_code'], name='ticketstate_order_idx')],
                'constraints': [models.UniqueConstraint(fields=('event', 'secret'), name='ticketstate_event_secret_uniq')],
            },
        ),
        migrations.RunPython(first_refusals, migrations.RunPython.noop),
    ]
