from urllib.parse import urlencode

from django import forms
from django.db import IntegrityError, transaction
from django.http import Http404
from django.views.decorators.gzip import gzip_page
from django_filters.rest_framework import (
    CharFilter, DjangoFilterBackend, Filter, FilterSet,
)
from django_scopes import scopes_disabled
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.permissions import SAFE_METHODS
from rest_framework.response import Response

from pretix.api.pagination import Pagination, TotalOrderingFilter
from pretix.base.models import Device
from pretix.helpers import OF_SELF

from pretix_secrets_import.gate import feed, list_feed, states as gate
from pretix_secrets_import.models import ImportedSecret
from pretix_secrets_import.paging import (
    POOL_ORDER, NumberedPagination, pool_for_list,
)
from pretix_secrets_import.plugin import enabled_for
from pretix_secrets_import.pool import store as pool
from pretix_secrets_import.pool.rules import ALREADY_IMPORTED, DB_ID_MAX
from pretix_secrets_import.pool.validation import clean_rows
from pretix_secrets_import.sales import alerts
from pretix_secrets_import.sales.sellable import (
    refuse_never_used, sellable as sellable_rows,
)

BULK_CREATE_LIMIT = 500


def _id_field():
    return serializers.IntegerField(allow_null=True, default=None, min_value=1, max_value=DB_ID_MAX)


def _save(secret):
    try:
        with transaction.atomic():
            secret.save()
    except IntegrityError:  # a concurrent request stored the same secret after our check
        raise ValidationError({"secret": [str(ALREADY_IMPORTED)]})
    return secret


class ImportedSecretListSerializer(serializers.ListSerializer):
    def to_internal_value(self, data):
        rows = super().to_internal_value(data)
        cleaned, errors = clean_rows(self.context["event"], rows)
        refuse_never_used(self.context["event"], rows, cleaned, errors)
        if any(errors):
            raise ValidationError(errors)
        return cleaned

    def create(self, validated_data):
        event = self.context["event"]
        objs = [ImportedSecret.build(event, row) for row in validated_data]
        try:
            with transaction.atomic():
                return ImportedSecret.objects.bulk_create(objs)
        except IntegrityError:  # a concurrent request stored one of the secrets after our check
            raise ValidationError([{"secret": [str(ALREADY_IMPORTED)]} for _ in objs])


class ImportedSecretSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    secret = serializers.CharField(allow_blank=True, trim_whitespace=False)
    used = serializers.BooleanField(default=False)
    item = _id_field()
    variation = _id_field()
    subevent = _id_field()

    class Meta:
        list_serializer_class = ImportedSecretListSerializer

    def to_representation(self, instance):
        return {"id": instance.pk, **instance.as_row()}

    def validate(self, attrs):
        if isinstance(self.parent, serializers.ListSerializer):
            return attrs  # the list serializer validates all rows at once
        row = dict(attrs)
        if self.instance is not None:
            row = {**self.instance.as_row(), **row}
        cleaned, errors = clean_rows(self.context["event"], [row], instance=self.instance)
        refuse_never_used(self.context["event"], [row], cleaned, errors, self.instance)
        if errors[0]:
            raise ValidationError(errors[0])
        return cleaned[0]

    def create(self, validated_data):
        return _save(ImportedSecret.build(self.context["event"], validated_data))

    def update(self, instance, validated_data):
        instance.apply(validated_data)
        return _save(instance)


class IdFilter(Filter):
    field_class = forms.IntegerField


class StrictBooleanField(forms.Field):
    """Unlike django-filter's BooleanFilter, rejects values other than true/false instead of ignoring the filter."""

    def to_python(self, value):
        if value in (None, ""):
            return None
        if str(value).lower() in ("true", "1"):
            return True
        if str(value).lower() in ("false", "0"):
            return False
        raise forms.ValidationError('Must be "true" or "false".', code="invalid")


class StrictBooleanFilter(Filter):
    field_class = StrictBooleanField


with scopes_disabled():
    class ImportedSecretFilter(FilterSet):
        secret = CharFilter(field_name="secret", lookup_expr="exact")
        used = StrictBooleanFilter(field_name="used")
        item = IdFilter(field_name="item_id", min_value=1, max_value=DB_ID_MAX)
        variation = IdFilter(field_name="variation_id", min_value=1, max_value=DB_ID_MAX)
        subevent = IdFilter(field_name="subevent_id", min_value=1, max_value=DB_ID_MAX)

        class Meta:
            model = ImportedSecret
            fields = ["secret", "used", "item", "variation", "subevent"]


class SellableFilter(forms.Form):
    item = forms.IntegerField(required=False, min_value=1, max_value=DB_ID_MAX)
    subevent = forms.IntegerField(required=False, min_value=1, max_value=DB_ID_MAX)


class PoolOrderingFilter(TotalOrderingFilter):
    """pretix' ordering, the ID order as ``paging.POOL_ORDER`` (the event first: constant within the pool)."""

    def get_ordering(self, request, queryset, view):
        ordering = list(super().get_ordering(request, queryset, view))
        if ordering[:1] in (["id"], ["-id"]):
            ordering[:1] = [ordering[0].replace("id", field) for field in POOL_ORDER]
        return ordering


# the filters that have an index of their own (``paging.pool_for_list``)
INDEXED_FILTERS = ("secret", "item", "variation", "subevent")


class ImportedSecretViewSet(viewsets.ModelViewSet):
    serializer_class = ImportedSecretSerializer
    queryset = ImportedSecret.objects.none()
    filter_backends = (DjangoFilterBackend, PoolOrderingFilter)
    filterset_class = ImportedSecretFilter
    ordering = ("id",)
    ordering_fields = ("id", "secret", "used")
    pagination_class = NumberedPagination
    # Same permissions as pretix' own revoked/blocked ticket secret endpoints
    permission = "event.orders:read"
    write_permission = "event.orders:write"

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if not enabled_for(request.event):
            raise Http404("The Secrets Import plugin is not enabled for this event.")

    def get_queryset(self):
        params = self.request.query_params
        in_order = self.action == "list" and params.get("ordering", "id") in ("id", "-id") and not any(
            params.get(name) for name in INDEXED_FILTERS)
        qs = pool_for_list(self.request.event, narrowed=not in_order)
        if self.request.method not in ("GET", "HEAD", "OPTIONS"):
            # Lock the row so that ticket allocation cannot use it while it is changed or deleted.
            qs = qs.select_for_update(of=OF_SELF)
        return qs

    def paginate_queryset(self, queryset):
        self.paginator.known_count = self._count_from_summary()
        return super().paginate_queryset(queryset)

    def _count_from_summary(self):
        """The number of rows the list's filters match, from the pool's counters; ``None`` for a secret lookup."""
        filters = ImportedSecretFilter(self.request.query_params, queryset=self.queryset)
        if not filters.is_valid() or filters.form.cleaned_data.get("secret"):
            return None  # an exact secret matches at most one row, counted through the unique index
        data = filters.form.cleaned_data
        return pool.count(
            self.request.event, used=data.get("used"), item=data.get("item"), variation=data.get("variation"),
            subevent=data.get("subevent"),
        )

    def get_serializer_context(self):
        ctx = super().get_serializer_context()
        ctx["event"] = self.request.event
        return ctx

    def _log(self, obj, action_type, data=None):
        # log_action masks every key containing "secret", so the secret itself never lands in the log
        obj.log_action(action_type, user=self.request.user, auth=self.request.auth, data=data)

    @transaction.atomic()
    def create(self, request, *args, **kwargs):
        return super().create(request, *args, **kwargs)

    def perform_create(self, serializer):
        serializer.save()
        gate.marked_used(self.request.event, [serializer.instance])
        self._log(serializer.instance, "pretix_secrets_import.secret.added", serializer.instance.as_row())
        alerts.pool_grew(self.request.event, {pool.Group.of(serializer.instance)})

    @transaction.atomic()
    def update(self, request, *args, **kwargs):
        if self.get_object().used:
            raise PermissionDenied("This secret has already been used and can no longer be changed.")
        return super().update(request, *args, **kwargs)

    def perform_update(self, serializer):
        serializer.save()
        gate.marked_used(self.request.event, [serializer.instance])
        self._log(serializer.instance, "pretix_secrets_import.secret.changed", serializer.instance.as_row())
        alerts.pool_grew(self.request.event, {pool.Group.of(serializer.instance)})  # it may have moved to another group

    @transaction.atomic()
    def destroy(self, request, *args, **kwargs):
        return super().destroy(request, *args, **kwargs)

    def perform_destroy(self, instance):
        if instance.used:
            raise PermissionDenied("This secret has already been used and can no longer be deleted.")
        # the deleted secret under "codes", as the backend's deletions log theirs ("secret" is masked)
        self._log(instance, "pretix_secrets_import.secret.deleted", {**instance.as_row(), "codes": [instance.secret]})
        instance.delete()

    # A list route: the router matches it before the detail route, so "summary" is never taken for an ID.
    @action(detail=False, methods=["GET"])
    def summary(self, request, *args, **kwargs):
        groups = pool.summary(request.event)
        total = sum(counted.total for counted in groups)
        unused = sum(counted.unused for counted in groups)
        rows = sellable_rows(request.event, on_sale=True, groups=groups)
        return Response({"total": total, "used": total - unused, "unused": unused,
                         "groups": [counted.as_dict() for counted in groups],
                         "sellable": {"products": len(rows), "sold_out": sum(1 for row in rows if not row.left),
                                      "lowest": rows[0].as_dict() if rows else None}})

    @action(detail=False, methods=["GET"])
    def sellable(self, request, *args, **kwargs):
        """A page of the products (variations, dates) that draw from the pool, fewest fitting secrets first."""
        filters = SellableFilter(request.query_params)
        if not filters.is_valid():
            raise ValidationError(filters.errors)
        chosen = {name: value for name, value in filters.cleaned_data.items() if value is not None}
        rows = sellable_rows(request.event, on_sale=True, **chosen)
        paginator = Pagination()
        page = paginator.paginate_queryset(rows, request, view=self)
        return paginator.get_paginated_response([row.as_dict() for row in page])

    def _get_permission_name(self, request):
        # pretix' check-in API lets a credential with check-in permission alone look up tickets: so may it read a
        # check-in list's feed. Everything else as the viewset declares.
        if self.action == "gate_feed" and "checkinlist" in request.query_params:
            return "event.orders:read", "event.orders:checkin"
        return self.permission if request.method in SAFE_METHODS else self.write_permission

    @action(detail=False, methods=["GET"])
    def gate_feed(self, request, *args, **kwargs):
        """
        Every pool secret with its gate state, or (``?cursor=``) the ones whose state changed since (feed.py); with
        ``?checkinlist=``, every ticket of that list with pretix' check-in answer (list_feed.py).
        """
        # gzip for a client that asks (a full sync of a million secrets: 170 MB as it is), by Django's GZipMiddleware
        # with its length padding against BREACH. Not for a browser's session: a page on another site could have it
        # ask for the feed with text of its choice in the next link, beside the secrets, and measure the answers. A
        # token or device credential goes in a header, which no other site can make a client send.
        if request.auth is None:
            return self._gate_feed(request)
        return gzip_page(self._gate_feed)(request)

    def _gate_feed(self, request):
        try:
            checkinlist = self._checkinlist(request)
            if checkinlist is None:
                if isinstance(request.auth, Device) and not feed.device_may_read_pool(request.auth):
                    raise PermissionDenied("This device may read the gate feed of a check-in list only "
                                           "(checkinlist=ID).")
                page = feed.read(request.event, request.query_params)
            else:
                ignore_unpaid = request.query_params.get("ignore_unpaid", "false").lower() in ("true", "1", "yes")
                page = list_feed.read(request.event, checkinlist, request.query_params, ignore_unpaid)
        except feed.FeedError as e:
            raise ValidationError({e.field: [str(e)], **({"code": e.code} if e.code else {})})
        except feed.SyncAgain as e:
            return Response({"detail": str(e), "code": feed.SYNC_AGAIN}, status=status.HTTP_409_CONFLICT)
        next_url = None
        if page["next_params"]:
            next_url = request.build_absolute_uri(request.path) + "?" + urlencode(page["next_params"])
        extra = {"rules": page["rules"]} if "rules" in page else {}
        return Response({"count": page["count"], "next": next_url, "previous": None, "results": page["results"],
                         "cursor": page["cursor"], **extra})

    @staticmethod
    def _checkinlist(request):
        value = request.query_params.get("checkinlist")
        if value is None:
            return None
        checkinlist = None
        if value.isdigit() and len(value) < 19:
            checkinlist = request.event.checkin_lists.filter(pk=int(value)).first()
        if checkinlist is None:
            raise feed.FeedError("checkinlist", "There is no check-in list with this ID in this event.")
        return checkinlist

    @action(detail=False, methods=["POST"])
    @transaction.atomic()
    def bulk_create(self, request, *args, **kwargs):
        serializer = self.get_serializer(
            data=request.data, many=True, max_length=BULK_CREATE_LIMIT, allow_empty=False,
        )
        serializer.is_valid(raise_exception=True)
        serializer.save()
        gate.marked_used(request.event, serializer.instance)
        self._log(request.event, "pretix_secrets_import.secrets.bulk_added", {"count": len(serializer.instance)})
        alerts.pool_grew(request.event, {pool.Group.of(secret) for secret in serializer.instance})
        return Response(serializer.data, status=status.HTTP_201_CREATED)
