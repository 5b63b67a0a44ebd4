"""The training pages. Thin: parse the form, call one service, render."""

from __future__ import annotations

import json
from copy import copy
from typing import Any, cast
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from rest_framework.authentication import SessionAuthentication
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from flags.gates import feature_state, feature_states
from flags.registry import FEATURES, UnknownFeature
from flags.services import FeatureNotAvailable, FeatureNotToggleable, preference_set
from training import dataset, selectors, services, uploads
from training.api.throttling import AtomicScopedRateThrottle
from training.dataset import DataSet
from training.models import ACTIVE_STATUSES, TrainingRun
from training.orchestrator.callbacks import callback_tokens_redacted
from training.orchestrator.contracts import active as active_contract
from training.payloads import stored_workflow_body
from training.runspec import FeatureNotActive, RunRejected
from training.web.forms import (
    PLACEHOLDER_DATA,
    STEP_LABELS,
    STEPS,
    FieldError,
    RunForm,
    check,
    check_for_estimate,
    check_submission,
    decorate,
    in_words,
    page_catalog,
    step_of,
    training_data,
)
from training.web.present import navigation, run_summary
from training.web.run_page import buzz_outcome, failure_explanation, samples_grid, time_texts
from training.webhooks.services import delivery_log
from vocabulary import catalog, presets

RUN_LIST_LIMIT = 50


def _page(
    request: HttpRequest, template: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    return render(request, template, {**navigation(request), **context}, status=status)


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return redirect("page-runs" if request.user.is_authenticated else "login")


# --- new run ----------------------------------------------------------------------------------
# One page, one URL, four steps (model -> data -> settings -> review & start). Every field of every
# step is in the one form (the steps not shown are `hidden`), so each POST carries all that was
# typed; the server validates the step being left, keeps the form in the session (the draft) and
# redirects to `?step=<next>`, so the browser's back button walks the steps with nothing lost.

DRAFT_KEY = "train-new-draft"
_DRAFT_FIELDS = frozenset(
    {
        "baseModel", "engine", "loraName", "customModel", "priority", "samplePrompts",
        "negativePrompt", "dataSource", "uploadedName", "dataUrl", "imageCount", "preset",
        "appliedPreset",
    }
)  # fmt: skip
_DRAFT_VALUE_MAX = 10_000


def _throttle_wait(request: HttpRequest, endpoint: APIView) -> float | None:
    """Counts this request against `endpoint`'s throttle scope: None when its rate admits it,
    else the seconds until it would. Page steps that store a zip or ask for a price spend from
    the bucket of the endpoint that does the same (UploadView, EstimateView), so no page path
    goes around a limit (#16.4)."""
    throttle = AtomicScopedRateThrottle()
    # The throttle reads only `.user` and `.META`, which the page's Django request has; wrapping
    # it in DRF's Request would authenticate it again with the API's classes.
    if throttle.allow_request(cast(Request, request), endpoint):
        return None
    return throttle.wait() or 60.0


def _throttled_error(wait: float) -> FieldError:
    minutes = max(1, round(wait / 60))
    return FieldError(
        "trainingData",
        "trainingZip",
        "throttled",
        f"Too many uploads in the last hour; try again in about {minutes} minute"
        f"{'s' if minutes != 1 else ''}, or give a URL instead.",
    )


def _draft_save(request: HttpRequest, form: RunForm, post: QueryDict) -> None:
    draft: dict[str, list[str]] = {}
    for key in post:
        if key in _DRAFT_FIELDS or key.startswith("params."):
            draft[key] = [str(v)[:_DRAFT_VALUE_MAX] for v in post.getlist(key)][:4]
    draft["uploadedName"] = [form.uploaded_name]
    draft["preset"] = [form.preset]
    draft["appliedPreset"] = [form.applied_preset]
    for name, value in form.raw_params.items():  # a preset applied on this POST
        draft[f"params.{name}"] = [value]
    request.session[DRAFT_KEY] = draft


def _draft(request: HttpRequest) -> QueryDict | None:
    stored = request.session.get(DRAFT_KEY)
    if not isinstance(stored, dict):
        return None
    data = QueryDict(mutable=True)
    for key, values in stored.items():
        if isinstance(values, list):
            data.setlist(str(key), [str(v) for v in values])
    return data


def _step_url(step: str) -> str:
    return f"{reverse('page-train-new')}?step={step}"


def _data_set(request: HttpRequest, form: RunForm) -> tuple[DataSet | None, FieldError | None]:
    if form.data_source != "upload" or not form.uploaded_name:
        return None, None
    try:
        data_set = dataset.dataset_get(
            user=request.user, name=form.uploaded_name, media_type=form.media_type
        )
    except uploads.UploadRejected as exc:
        return None, FieldError("trainingData", "trainingZip", exc.code, exc.message)
    return data_set, None


def _review(request: HttpRequest, form: RunForm) -> dict[str, Any]:
    """What the review step shows: the problems left, or what will train and its price."""
    checked = check_submission(form, request=request, upload=None)
    if checked.spec is None:
        return {"errors": in_words(form, checked.errors), "status": checked.status}
    out: dict[str, Any] = {"errors": [], "status": 200, "spec": checked.spec}
    # The review asks the orchestrator for a price on every visit (cached by the exact body for
    # ESTIMATE_CACHE_SECONDS): it counts as an estimate.
    wait = _throttle_wait(request, EstimateView())
    if wait is not None:
        out["estimate_problem"] = (
            f"Prices were asked for too often in the last minute; reload this page in "
            f"{int(wait)} seconds to see this one. You can still start: the run is priced when "
            f"it is sent."
        )
        return out
    try:
        out["estimate"] = services.training_run_estimate(spec=checked.spec)
    except services.OrchestratorUnavailable:
        out["estimate_problem"] = (
            "The price cannot be worked out right now (the training service does not answer); "
            "you can still start, and the run waits for it."
        )
    except RunRejected as exc:
        errors = [FieldError(p.field, None, p.code, p.message) for p in exc.problems]
        return {"errors": in_words(form, errors), "status": 400}
    return out


def _new_run_context(
    request: HttpRequest,
    form: RunForm,
    errors: list[FieldError],
    image_count: int | None,
    data: dict[str, Any] | None = None,
    step: str = "model",
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
    review: dict[str, Any] = {}
    if step == "review" and not errors:
        review = _review(request, form)
        errors = review["errors"]
    errors = in_words(form, errors)
    by_input: dict[str, list[str]] = {}
    for error in errors:
        if error.input:
            by_input.setdefault(error.input, []).append(error.message)
    rows = form.rows()
    decorate(rows, by_input)
    data_set, data_set_error = _data_set(request, form)
    if data_set_error and "trainingZip" not in by_input:
        by_input["trainingZip"] = [data_set_error.message]
    steps = [
        {
            "key": key,
            "label": STEP_LABELS[key],
            "number": number,
            "current": key == step,
            "problems": sum(1 for e in errors if step_of(e) == key),
        }
        for number, key in enumerate(STEPS, 1)
    ]
    engine_labels = {e["key"]: e["label"] for e in data["engines"]}
    return {
        "form": form,
        "step": step,
        "steps": steps,
        "previous_step": STEPS[STEPS.index(step) - 1] if STEPS.index(step) > 0 else None,
        "families": families,
        "selected": selected,
        "engine": form.page_engine,
        "engine_label": engine_labels.get(form.page_engine or "", ""),
        "rapid": engines.get(catalog.RAPID),
        "ai_toolkit": engines.get(catalog.AI_TOOLKIT),
        "ai_toolkit_state": state,
        "ai_toolkit_info": catalog.ENGINES[catalog.AI_TOOLKIT].description,
        "rows": rows,
        # Closed once a preset is chosen (the simple mode); open for custom values or an error.
        "advanced_open": form.preset in ("", "custom") or any(row["errors"] for row in rows),
        "preset_keys": sorted(presets.PRESET_KEYS),
        "presets": form.preset_choices(),
        "main_rows": [r for r in rows if r["name"] in MAIN_SETTINGS and not r["locked"]],
        "changed_rows": [r for r in rows if not r["locked"] and r["text"] != _shown(r["default"])],
        "errors": errors,
        "errors_by_input": by_input,
        "image_count": image_count,
        "data_set": data_set,
        "review": review,
        "page_data": {
            "catalog": page_catalog(data),
            "presets": {m["key"]: _presets_by_engine(m) for m in data["baseModels"]},
            "aiToolkit": {"active": state.active, "available": state.available},
            "uploadMaxBytes": uploads.upload_max_bytes(),
            "step": step,
            "urls": {
                "estimate": reverse("page-train-estimate"),
                "upload": reverse("page-train-upload"),
            },
        },
    }


MAIN_SETTINGS = frozenset({"maxTrainEpochs", "steps", "checkpoints", "numRepeats", "resolution"})


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _presets_by_engine(model: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for entry in model["engines"]:
        if entry["available"]:
            form = RunForm.initial(model["key"])
            form.engine_choices = [entry["key"]]
            form.defaults = {p["name"]: p["default"] for p in entry.get("params", [])}
            out[entry["key"]] = form.preset_choices()
    return out


def _default_base(request: HttpRequest, data: dict[str, Any]) -> str:
    wanted = request.GET.get("baseModel", "")
    keys = [m["key"] for m in data["baseModels"]]
    return wanted if wanted in keys else ("sdxl" if "sdxl" in keys else keys[0])


def _render_step(
    request: HttpRequest,
    form: RunForm,
    step: str,
    errors: list[FieldError] | None = None,
    status: int = 200,
    image_count: int | None = None,
    data: dict[str, Any] | None = None,
) -> HttpResponse:
    context = _new_run_context(request, form, errors or [], image_count, data, step=step)
    if context["review"] and context["review"]["status"] != 200:
        status = context["review"]["status"]
    return _page(request, "training/new_run.html", context, status=status)


@csrf_exempt  # the bounded upload handler must be installed before the body is read; the
@login_required  # CSRF check follows in _new_run_checked (Django's documented order)
@require_http_methods(["GET", "POST"])
def new_run(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _new_run_get(request)
    handler = uploads.bounded_uploads(request)
    request.POST  # noqa: B018  # read the body now, through the bounded handler
    if handler.too_large:
        # Nothing was read or stored, and nothing changes: no CSRF check needed to say so.
        form = RunForm.from_post(_draft(request) or QueryDict())
        if form.base is None:
            form = RunForm.initial("sdxl")
        error = FieldError(
            "trainingData", "trainingZip", "too_large", uploads.too_large_message(handler.limit)
        )
        return _render_step(request, form, "data", [error], status=413)
    return _new_run_checked(request)


def _new_run_get(request: HttpRequest) -> HttpResponse:
    step = request.GET.get("step", "")
    draft = None if request.GET.get("fresh") else _draft(request)
    data = None
    if draft is not None and "baseModel" not in request.GET:
        form = RunForm.from_post(draft)
    else:
        data = selectors.training_catalog(user=request.user)  # the page reuses it: built once
        form = RunForm.initial(_default_base(request, data))
        request.session.pop(DRAFT_KEY, None)
    return _render_step(request, form, step if step in STEPS else "model", data=data)


def _captions(post: QueryDict) -> dict[int, str]:
    out = {}
    for key in post:
        head, _, index = key.partition(".")
        if head == "caption" and index.isdigit():
            out[int(index)] = str(post.get(key, ""))[: dataset.CAPTION_MAX_BYTES]
    return out


def _step_errors(request: HttpRequest, form: RunForm, step: str) -> tuple[list[FieldError], int]:
    """The problems of one step's fields, as the API sees them, and the status to answer."""
    if step == "data":
        data = training_data(form, user=request.user, upload=None)
        if data.error:
            return [data.error], 400
        if data.body is None:
            return [
                FieldError(
                    "trainingData",
                    "trainingZip" if form.data_source == "upload" else "dataUrl",
                    "required",
                    "Add your training data: upload a zip, or give its URL and image count.",
                )
            ], 400
    probe = copy(form)
    checked = check_for_estimate(probe, request=request)
    errors = [e for e in checked.errors if step_of(e) == step]
    if step == "settings" and not form.lora_name.strip():
        errors.insert(0, FieldError("loraName", "loraName", "blank", "Give the LoRA a name."))
    return errors, checked.status if checked.forbidden else 400


@csrf_protect
def _new_run_checked(request: HttpRequest) -> HttpResponse:
    form = RunForm.from_post(request.POST)
    step = request.POST.get("step", "")
    action = request.POST.get("action", "")
    upload = request.FILES.get("trainingZip")
    if step not in STEPS:
        return _submit_all(request, form, upload)
    if form.base is None:
        form.base_key = "sdxl"
    form.apply_preset()
    _draft_save(request, form, request.POST)
    index = STEPS.index(step)

    if action == "back":
        return redirect(_step_url(STEPS[max(0, index - 1)]))
    if action.startswith("goto:") and action[5:] in STEPS:
        return redirect(_step_url(action[5:]))
    if action == "ai-toolkit-on":
        try:
            preference_set(user=request.user, key=catalog.AI_TOOLKIT_FEATURE, enabled=True)
        except (UnknownFeature, FeatureNotToggleable, FeatureNotAvailable) as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, "AI Toolkit Training is on; choose it below.")
        return redirect(_step_url("model"))

    if step == "data" and upload is not None:
        wait = _throttle_wait(request, UploadView())
        if wait is not None:
            return _render_step(request, form, "data", [_throttled_error(wait)], status=429)
        data = training_data(form, user=request.user, upload=upload)
        if data.error:
            form.uploaded_name = ""
            _draft_save(request, form, request.POST)
            return _render_step(request, form, "data", [data.error], status=400)
        _draft_save(request, form, request.POST)
        messages.success(request, "Zip uploaded. Check the images and their captions below.")
        return redirect(_step_url("data"))
    captions = _captions(request.POST)
    if step == "data" and captions and form.uploaded_name:
        try:
            current = dataset.dataset_get(
                user=request.user, name=form.uploaded_name, media_type=form.media_type
            )
            changed = any(
                (captions.get(i.index, "").strip() != (i.caption or ""))
                for i in current.items
                if i.index in captions
            )
            if changed:
                wait = _throttle_wait(request, UploadView())  # a new zip is written: same rate
                if wait is not None:
                    return _render_step(request, form, "data", [_throttled_error(wait)], 429)
                stored = dataset.dataset_captions_save(
                    user=request.user,
                    name=form.uploaded_name,
                    media_type=form.media_type,
                    captions=captions,
                )
                form.uploaded_name = stored.name
                _draft_save(request, form, request.POST)
                messages.success(request, "Captions saved into your zip.")
        except uploads.UploadRejected as exc:
            error = FieldError("trainingData", "trainingZip", exc.code, exc.message)
            return _render_step(request, form, "data", [error], status=400)
        if action == "captions":
            return redirect(_step_url("data"))

    if action in ("next", "captions", "upload") and step != "review":
        errors, status = _step_errors(request, form, step)
        if errors:
            return _render_step(request, form, step, errors, status=status)
        target = step if action in ("captions", "upload") else STEPS[index + 1]
        return redirect(_step_url(target))
    if action == "start":
        return _create(request, form, upload=None)
    return redirect(_step_url(step))


def _create(request: HttpRequest, form: RunForm, upload: Any) -> HttpResponse:
    checked = check_submission(form, request=request, upload=upload)
    errors, status = checked.errors, checked.status
    if checked.spec is not None:
        try:
            run = services.training_run_create(owner=request.user, spec=checked.spec)
        except services.ActiveRunLimit as exc:
            errors, status = [FieldError(None, None, "active_run_limit", str(exc))], 429
        else:
            request.session.pop(DRAFT_KEY, None)
            messages.success(
                request,
                f"Run “{run.lora_name}” accepted; it is being submitted.",
                extra_tags="while-submitting",  # the run page removes it once it is submitted
            )
            return redirect("page-run", run_id=run.pk)
    first = min((STEPS.index(step_of(e)) for e in errors), default=len(STEPS) - 1)
    return _render_step(request, form, STEPS[first], errors, status, checked.image_count)


def _submit_all(request: HttpRequest, form: RunForm, upload: Any) -> HttpResponse:
    """The whole form in one POST (no step: a script or an older page). A zip is stored only
    once the rest of the form is valid, and only under the upload throttle (#16.4)."""
    if upload is not None:
        rest = check(copy(form), request=request, body_data=PLACEHOLDER_DATA)
        errors = form.form_problems() + [
            e for e in rest.errors if not (e.field or "").startswith("trainingData")
        ]
        if errors:
            note = FieldError(
                "trainingData",
                "trainingZip",
                "not_stored",
                "Your zip was not stored: choose it again once the rest of the form is right.",
            )
            first = min(STEPS.index(step_of(e)) for e in errors)
            return _render_step(request, form, STEPS[first], [*errors, note], rest.status)
        wait = _throttle_wait(request, UploadView())
        if wait is not None:
            return _render_step(request, form, "data", [_throttled_error(wait)], status=429)
    return _create(request, form, upload)


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
        form = RunForm.from_post(_form_data(request))
        checked = check_for_estimate(form, request=request)
        if checked.spec is None:  # shown on the page: in the page's words
            return _error_response(in_words(form, checked.errors), checked.status)
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

    def initialize_request(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Request:
        # Before anything reads the body (the CSRF check does): stream it through the bound.
        self.upload_handler = uploads.bounded_uploads(request)
        return super().initialize_request(request, *args, **kwargs)

    def post(self, request: Request) -> Response:
        upload = request.FILES.get("trainingZip")
        if self.upload_handler.too_large:
            message = uploads.too_large_message(self.upload_handler.limit)
            error = FieldError("trainingData", "trainingZip", "too_large", message)
            return _error_response([error], 413)
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


@login_required
@require_GET
def data_thumbnail(request: HttpRequest, key: str, index: int) -> HttpResponse:
    """A thumbnail of the index-th image in one of this user's uploaded zips."""
    name = f"{uploads.UPLOAD_DIR}/{request.user.pk}/{key}.zip"
    try:
        thumb = dataset.dataset_thumbnail(user=request.user, name=name, index=index)
    except uploads.UploadRejected:
        raise Http404("No such upload among yours.") from None
    if thumb is None:
        raise Http404("No thumbnail for this file.")
    response = HttpResponse(thumb, content_type="image/webp")
    response["Cache-Control"] = "private, max-age=86400"
    return response


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


def _param_labels(run: TrainingRun) -> list[tuple[str, Any]]:
    """The run's parameters under the form's labels ("Epochs", not `maxTrainEpochs`)."""
    specs = (
        catalog.param_spec_map(run.base_model, run.engine, active_contract().name)  # type: ignore[arg-type]
        if run.base_model in catalog.BASE_MODELS
        else {}
    )
    rows = [
        (specs[name].label if name in specs else presets.FIELD_LABELS.get(name, name), value)
        for name, value in (run.params or {}).items()
    ]
    return sorted(rows)


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
        "params": _param_labels(run),
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
