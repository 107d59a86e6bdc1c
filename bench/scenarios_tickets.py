"""
The benchmark's scenarios of what pretix does with sold tickets: a check-in, the cancellation of a date, a ticket
PDF; each for a pool ticket against pretix without the plugin (or its QR code).
"""
import cProfile
import pstats
import time
from datetime import datetime, timedelta, timezone

from harness import Harness, analyze, interleaved, median
from stack import log


class TicketScenarios(Harness):
    """checkin, checkin queries, cancel-date, pdf-linear."""

    def bench_checkin(self):
        """pretix' perform_checkin: a pool ticket against a ticket of an event without the plugin, alternating."""
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        from pretix.base.models import OrderPosition
        from pretix.base.services.checkin import perform_checkin
        with_pool = self.make_event("checkin-pool", "imported_secrets")
        self.fill(with_pool, "CHECKIN", 100)
        plain = self.make_event("checkin-plain", "random")
        plain.plugins = "pretix.plugins.banktransfer"
        plain.save()
        client, sides = self.api_client(), {}
        for ev in (plain, with_pool):
            secret = self.order(client, ev)
            position = OrderPosition.objects.get(order__event=ev, secret=secret)
            sides[ev.slug] = (position, ev.checkin_lists.create(name="Entry", allow_multiple_entries=True))
        queries, calls, times, cpu_times = {}, {}, {slug: [] for slug in sides}, {slug: [] for slug in sides}
        for slug, (position, clist) in sides.items():
            with CaptureQueriesContext(connection) as captured:
                perform_checkin(position, clist, {})
            queries[slug] = len(captured)
            # Python function calls of one check-in: deterministic, where the times carry the machine's noise
            profile = cProfile.Profile()
            profile.runcall(perform_checkin, position, clist, {})
            calls[slug] = pstats.Stats(profile).total_calls
        for _r, pair in interleaved(self.p["checkin_rounds"], plain.slug, with_pool.slug):
            for slug in pair:
                position, clist = sides[slug]
                t, cpu = time.perf_counter(), time.process_time()
                for _i in range(self.p["checkin_batch"]):
                    perform_checkin(position, clist, {})
                times[slug].append((time.perf_counter() - t) / self.p["checkin_batch"])
                cpu_times[slug].append((time.process_time() - cpu) / self.p["checkin_batch"])
        a, b = median(times[plain.slug]), median(times[with_pool.slug])
        # the median of each round's ratio: the two sides of a round ran back to back, so the machine's drift
        # between rounds (seen here: 50 % within minutes) cancels out
        ratio = median([pool / without for without, pool in zip(times[plain.slug], times[with_pool.slug])])
        self.add("checkin", a, b, ratio, dict(a_times=times[plain.slug], b_times=times[with_pool.slug],
                                              a_calls=calls[plain.slug], b_calls=calls[with_pool.slug],
                                              ratio_of_medians=b / a, cpu_ratio=median(
                                                  [p / w for w, p in zip(cpu_times[plain.slug],
                                                                         cpu_times[with_pool.slug])])))
        log(f"checkin: {calls[plain.slug]} Python function calls without the plugin, {calls[with_pool.slug]} with")
        a, b = queries[plain.slug], queries[with_pool.slug]
        self.add("checkin queries", a, b, b - a)

    def sold_date(self, event, prefix, orders, pool):
        """A new date of ``event`` with ``orders`` paid orders of one ticket each, written in bulk."""
        from django.utils.timezone import now

        from pretix.base.models import Order, OrderPosition, SubEvent

        from pretix_secrets_import.models import GateState, ImportedSecret
        date = SubEvent.objects.create(event=event, name=prefix, active=True,
                                       date_from=datetime(2031, 1, 1, tzinfo=timezone.utc))
        channel = self.organizer.sales_channels.get(identifier="web")
        created = Order.objects.bulk_create([Order(
            event=event, organizer=event.organizer, code=f"{prefix}{i:06d}", status=Order.STATUS_PAID,
            email="buyer@example.org",
            datetime=now(), expires=now() + timedelta(days=1), total=0, sales_channel=channel, locale="en",
        ) for i in range(orders)])
        secrets = [f"{prefix}-{i:08d}" for i in range(orders)]
        OrderPosition.objects.bulk_create([OrderPosition(
            order=order, organizer=event.organizer, item=event.bench_item, subevent=date, price=0, tax_rate=0,
            tax_value=0, positionid=1, secret=secret, pseudonymization_id=f"{secret}-P",
        ) for order, secret in zip(created, secrets)])
        if pool:
            rows = ImportedSecret.objects.bulk_create([ImportedSecret(
                event=event, organizer=event.organizer, secret=secret, used=True, used_at=now(),
            ) for secret in secrets])
            GateState.objects.bulk_create([GateState(
                secret=row, event=event, state="valid", reason="paid", changed=now(), order_code=order.code,
                positionid=1, item_id=event.bench_item.pk, subevent_id=date.pk, tx=1,
            ) for row, order in zip(rows, created)])
        # without statistics, PostgreSQL runs pretix' selection of the orders to cancel (correlated subqueries) as
        # nested scans whose time grows with the square of the orders
        analyze()
        return date

    def bench_cancel_date(self):
        """pretix' "cancel event" action for one date of a series: every order canceled, one by one."""
        from django.db import connection

        from pretix.base.models import Order
        from pretix.base.services.cancelevent import cancel_event

        from pretix_secrets_import.models import GateState
        orders, rounds = self.p["cancel_orders"], self.p["cancel_rounds"]
        plain = self.make_event("cancel-plain", "random")
        plain.has_subevents = True
        plain.plugins = "pretix.plugins.banktransfer"
        plain.save()
        pool = self.make_event("cancel-pool", "imported_secrets")
        pool.has_subevents = True
        pool.save()
        times, queries = {plain.slug: [], pool.slug: []}, {plain.slug: 0, pool.slug: 0}
        # pretix' cancellation slows down as the orders table grows: with one round, the plugin's side goes second
        # (the harder place); with more, each side goes first equally often.
        for round_no, pair in interleaved(rounds, plain, pool):
            for event in pair:
                prefix = ("P" if event is plain else "Q") + str(round_no)
                date = self.sold_date(event, prefix, orders, pool=event is pool)
                counted = []

                def count(execute, sql, params, many, context):
                    counted.append(1)
                    return execute(sql, params, many, context)

                with connection.execute_wrapper(count):
                    t = time.perf_counter()
                    cancel_event.apply(kwargs=dict(
                        event=event.pk, subevent=date.pk, auto_refund=False, keep_fee_fixed="0.00",
                        keep_fee_per_ticket="0.00", keep_fee_percentage="0.00", keep_fees=[], send=False,
                        send_subject={}, send_message={}, user=None,
                    ))
                    times[event.slug].append(time.perf_counter() - t)
                queries[event.slug] += len(counted)
                canceled = Order.objects.filter(event=event, all_positions__subevent=date,
                                                status=Order.STATUS_CANCELED).distinct().count()
                if canceled != orders:
                    raise RuntimeError(f"{event.slug}: {canceled} of {orders} orders canceled")
                log(f"cancel {orders} orders of {event.slug}: {times[event.slug][-1]:.1f} s, {len(counted)} queries")
        void = GateState.objects.filter(event=pool, state="void", reason="canceled").count()
        if void != rounds * orders:
            raise RuntimeError(f"{void} of {rounds * orders} pool secrets void after the cancellations")
        a, b = sum(times[plain.slug]), sum(times[pool.slug])
        self.add("cancel-date", a, b, b / a, dict(
            orders_per_round=orders, rounds=rounds, times=times, queries=queries,
            extra_queries_per_order=(queries[pool.slug] - queries[plain.slug]) / (rounds * orders),
        ))

    def bench_pdf(self):
        """Rendering a ticket PDF (pretix' default layout) with the secret as pretix' QR code and as Code 128."""
        from django_scopes import scope

        from pretix.base.models import OrderPosition
        from pretix.plugins.ticketoutputpdf.ticketoutput import PdfTicketOutput
        client = self.api_client()
        events = {}
        for symbology in ("qr", "code128"):
            event = self.make_event(f"pdf-{symbology}", "imported_secrets")
            event.enable_plugin("pretix.plugins.ticketoutputpdf")
            event.save()
            event.settings.set("secrets_import_symbology", symbology)
            # the same length on both sides, as long as a typical vendor's code
            self.raw_insert(event, [f"PDF{symbology[0].upper()}-2031-{i:06d}" for i in range(3)])
            secret = self.order(client, event)
            events[symbology] = (event, OrderPosition.objects.get(order__event=event, secret=secret))
        times = {"qr": [], "code128": []}
        for _r, pair in interleaved(self.p["pdf_rounds"] + 1, "qr", "code128"):  # the first round warms up
            for symbology in pair:
                event, position = events[symbology]
                with scope(organizer=event.organizer):
                    t = time.perf_counter()
                    for _ in range(self.p["pdf_batch"]):
                        PdfTicketOutput(event).generate(position)
                    times[symbology].append((time.perf_counter() - t) / self.p["pdf_batch"])
        a, b = median(times["qr"][1:]), median(times["code128"][1:])
        self.add("pdf-linear", a, b, b / a, dict(
            rounds=self.p["pdf_rounds"], per_round=self.p["pdf_batch"], a_times=times["qr"][1:],
            b_times=times["code128"][1:],
        ))
