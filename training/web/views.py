"""The training pages. Thin: parse the form, call one service, render."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from rest_framework.authentication import SessionAuthentication
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from flags.gates import feature_state, feature_states
from flags.registry import FEATURES, UnknownFeature
from flags.services import FeatureNotAvailable, FeatureNotToggleable, preference_set
from training import selectors, services, uploads
from training.api.throttling import AtomicScopedRateThrottle
from training.models import ACTIVE_STATUSES, TrainingRun
from training.orchestrator.callbacks import callback_tokens_redacted
from training.payloads import stored_workflow_body
from training.runspec import FeatureNotActive, RunRejected
from training.web.forms import (
    FieldError,
    RunForm,
    check_for_estimate,
    check_submission,
    decorate,
    page_catalog,
)
from training.web.present import navigation, run_summary
from training.web.run_page import buzz_outcome, failure_explanation, samples_grid, time_texts
from training.webhooks.services import delivery_log
from vocabulary import catalog

RUN_LIST_LIMIT = 50


def _page(
    request: HttpRequest, template: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    return render(request, template, {**navigation(request), **context}, status=status)


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return redirect("page-runs" if request.user.is_authenticated else "login")


# --- new run ----------------------------------------------------------------------------------


def _new_run_context(
    request: HttpRequest,
    form: RunForm,
    errors: list[FieldError],
    image_count: int | None,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    data = data or selectors.training_catalog(user=request.user)
    state = feature_state(request.user, catalog.AI_TOOLKIT_FEATURE)
    families: dict[str, list[dict[str, Any]]] = {}
    for model in data["baseModels"]:
        families.setdefault(model["family"], []).append(model)
    selected = next((m for m in data["baseModels"] if m["key"] == form.base_key), None)
    engines = {e["key"]: e for e in selected["engines"]} if selected else {}
    if form.engine and not engines.get(form.engine, {}).get("available"):
        # A hand-made engine this user cannot pick: redraw with the default, which has a toggle.
        form.engine_choices = []
    if form.page_engine == catalog.AI_TOOLKIT and catalog.AI_TOOLKIT in engines:
        # Rows show this user's effective defaults (an override or their experiment arm).
        form.defaults = {p["name"]: p["default"] for p in engines[catalog.AI_TOOLKIT]["params"]}
    by_input: dict[str, list[str]] = {}
    for error in errors:
        if error.input:
            by_input.setdefault(error.input, []).append(error.message)
    rows = form.rows()
    decorate(rows, by_input)
    return {
        "form": form,
        "families": families,
        "selected": selected,
        "engine": form.page_engine,
        "rapid": engines.get(catalog.RAPID),
        "ai_toolkit": engines.get(catalog.AI_TOOLKIT),
        "ai_toolkit_state": state,
        "ai_toolkit_info": catalog.ENGINES[catalog.AI_TOOLKIT].description,
        "rows": rows,
        "errors": errors,
        "errors_by_input": by_input,
        "image_count": image_count,
        "page_data": {
            "catalog": page_catalog(data),
            "aiToolkit": {"active": state.active, "available": state.available},
            "uploadMaxBytes": uploads.upload_max_bytes(),
            "urls": {
                "estimate": reverse("page-train-estimate"),
                "upload": reverse("page-train-upload"),
            },
        },
    }


def _default_base(request: HttpRequest, data: dict[str, Any]) -> str:
    wanted = request.GET.get("baseModel", "")
    keys = [m["key"] for m in data["baseModels"]]
    return wanted if wanted in keys else ("sdxl" if "sdxl" in keys else keys[0])


@login_required
@require_http_methods(["GET", "POST"])
def new_run(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        data = selectors.training_catalog(user=request.user)
        form = RunForm.initial(_default_base(request, data))
        context = _new_run_context(request, form, [], None, data)
        return _page(request, "training/new_run.html", context)

    form = RunForm.from_post(request.POST)
    checked = check_submission(form, request=request, upload=request.FILES.get("trainingZip"))
    errors, status = checked.errors, checked.status
    if checked.spec is not None:
        try:
            run = services.training_run_create(owner=request.user, spec=checked.spec)
        except services.ActiveRunLimit as exc:
            errors, status = [FieldError(None, None, "active_run_limit", str(exc))], 429
        else:
            messages.success(
                request,
                f"Run “{run.lora_name}” accepted; it is being submitted.",
                extra_tags="while-submitting",  # the run page removes it once it is submitted
            )
            return redirect("page-run", run_id=run.pk)
    context = _new_run_context(request, form, errors, checked.image_count)
    return _page(request, "training/new_run.html", context, status=status)


class _PageAPIView(APIView):
    """JSON endpoints of the pages: session login with CSRF, form-encoded bodies."""

    authentication_classes = [SessionAuthentication]
    parser_classes = [FormParser, MultiPartParser]


def _form_data(request: Request) -> QueryDict:
    data = request.data
    return data if isinstance(data, QueryDict) else QueryDict()


def _error_response(errors: list[FieldError], status: int) -> Response:
    message = errors[0].message if len(errors) == 1 else f"{len(errors)} problems; see the fields."
    code = "feature_not_active" if status == 403 else "invalid"
    return Response(
        {"code": code, "message": message, "errors": [e.as_dict() for e in errors]}, status=status
    )


class EstimateView(_PageAPIView):
    """The live estimate: the form as it stands, checked like a submission, priced by
    `services.training_run_estimate` (the API's estimate, with the same throttle bucket)."""

    throttle_scope = "run_estimate"
    throttle_classes = [AtomicScopedRateThrottle]

    def post(self, request: Request) -> Response:
        checked = check_for_estimate(RunForm.from_post(_form_data(request)), request=request)
        if checked.spec is None:
            return _error_response(checked.errors, checked.status)
        if not checked.complete:
            return Response(
                {"estimate": None, "message": "Add your training data to see the price."}
            )
        try:
            estimate = services.training_run_estimate(spec=checked.spec)
        except services.OrchestratorUnavailable as exc:
            return Response({"code": "orchestrator_unavailable", "message": str(exc)}, status=503)
        except RunRejected as exc:
            rejected = [FieldError(p.field, None, p.code, p.message) for p in exc.problems]
            return _error_response(rejected, 400)
        return Response(
            {
                "estimate": {
                    "cost": estimate.cost,
                    "jobsAhead": estimate.jobsAhead,
                    "etaMinutes": estimate.etaMinutes,
                    "warnings": estimate.warnings,
                },
                "engine": checked.spec.engine,
                "imageCount": checked.spec.image_count,
            }
        )


class UploadView(_PageAPIView):
    """Stores a training zip as soon as it is chosen, so the estimate knows its image count."""

    parser_classes = [MultiPartParser]
    # Each upload can be hundreds of megabytes on our disk: a per-user rate, not only a size.
    throttle_scope = "training_upload"
    throttle_classes = [AtomicScopedRateThrottle]

    def post(self, request: Request) -> Response:
        upload = request.FILES.get("trainingZip")
        base = catalog.BASE_MODELS.get(str(_form_data(request).get("baseModel", "")))
        if upload is None:
            error = FieldError("trainingData", "trainingZip", "required", "Choose a zip to upload.")
            return _error_response([error], 400)
        try:
            stored = uploads.training_zip_store(
                user=request.user, upload=upload, media_type=base.media_type if base else "image"
            )
        except uploads.UploadRejected as exc:
            error = FieldError("trainingData", "trainingZip", exc.code, exc.message)
            return _error_response([error], 400)
        return Response(
            {"name": stored.name, "url": stored.url, "imageCount": stored.image_count}, status=201
        )


# --- runs -------------------------------------------------------------------------------------


def _own_run(request: HttpRequest, run_id: UUID) -> TrainingRun:
    try:
        return selectors.training_run_get(user=request.user, run_id=run_id)
    except TrainingRun.DoesNotExist:
        raise Http404("No such training run among yours.") from None


@login_required
@require_GET
def run_list(request: HttpRequest) -> HttpResponse:
    runs = list(selectors.training_run_list(user=request.user)[:RUN_LIST_LIMIT])
    rows = [run_summary(run) for run in runs]
    context = {
        "rows": rows,
        "any_active": any(row["active"] for row in rows),
        "limit": RUN_LIST_LIMIT,
        "active_statuses": sorted(ACTIVE_STATUSES),
    }
    return _page(request, "training/run_list.html", context)


@login_required
@require_GET
def run_detail(request: HttpRequest, run_id: UUID) -> HttpResponse:
    run = _own_run(request, run_id)
    summary = run_summary(run)
    context = {
        **summary,
        **time_texts(run),
        "grid": samples_grid(run),
        "explanation": failure_explanation(run),
        "buzz": buzz_outcome(run),
        "retries": list(
            run.retries.filter(owner_id=run.owner_id).only("pk", "lora_name", "created_at")
        ),
        "deliveries": delivery_log(run.pk),
        "events": list(run.events.all()),
        "epochs": list((run.outputs or {}).get("epochs", [])),
        "params": sorted((run.params or {}).items()),
        "payload": json.dumps(callback_tokens_redacted(stored_workflow_body(run)), indent=2),
        "active_statuses": sorted(ACTIVE_STATUSES),
        "retryable_statuses": sorted(services.RETRYABLE),
    }
    return _page(request, "training/run_detail.html", context)


@login_required
@require_POST
def run_cancel(request: HttpRequest, run_id: UUID) -> HttpResponse:
    run = _own_run(request, run_id)
    try:
        canceled = services.training_run_cancel(run=run)
    except (services.RunConflict, services.OrchestratorUnavailable) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"The run was canceled. {buzz_outcome(canceled) or ''}".strip())
    return redirect("page-run", run_id=run.pk)


@login_required
@require_POST
def run_retry(request: HttpRequest, run_id: UUID) -> HttpResponse:
    run = _own_run(request, run_id)
    try:
        new_run = services.training_run_retry(run=run, user=request.user)
    except (services.RunConflict, services.ActiveRunLimit) as exc:
        messages.error(request, str(exc))
    except FeatureNotActive as exc:
        messages.error(request, exc.message)
    except RunRejected as exc:
        messages.error(request, "This run cannot be retried as it was: " + str(exc))
    else:
        messages.success(request, "A new run was started with the same settings.")
        return redirect("page-run", run_id=new_run.pk)
    return redirect("page-run", run_id=run.pk)


# --- features ---------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def features(request: HttpRequest) -> HttpResponse:
    back = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(back, {request.get_host()}, request.is_secure()):
        back = ""
    if request.method == "POST":
        key = request.POST.get("key", "")
        enabled = request.POST.get("enabled") == "on"
        try:
            preference_set(user=request.user, key=key, enabled=enabled)
        except (UnknownFeature, FeatureNotToggleable, FeatureNotAvailable) as exc:
            messages.error(request, str(exc))
        else:
            state = "on" if enabled else "off"
            messages.success(request, f"{FEATURES[key].display_name} is now {state}.")
        target = reverse("page-features") + (f"?{urlencode({'next': back})}" if back else "")
        return HttpResponseRedirect(target)
    toggles = [
        {"feature": FEATURES[key], "enabled": bool(state.enabled_preference)}
        for key, state in feature_states(request.user).items()
        if state.toggleable and state.available
    ]
    return _page(request, "flags/features.html", {"toggles": toggles, "next": back})
