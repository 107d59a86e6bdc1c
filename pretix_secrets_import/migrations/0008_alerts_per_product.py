from django.db import migrations


def forget_alerts(apps, schema_editor):
    # Alerts were kept per restriction group; now per product (variation, date). Forgetting the old ones re-arms them:
    # a product below the threshold gets one new alert at its next sale.
    apps.get_model("pretix_secrets_import", "PoolAlert").objects.all().delete()


class Migration(migrations.Migration):

    dependencies = [
        ("pretix_secrets_import", "0007_importrun"),
    ]

    operations = [
        migrations.RunPython(forget_alerts, migrations.RunPython.noop),
    ]
