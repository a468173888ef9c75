"""The article's variants, ready to submit by name."""

from fastapi import APIRouter

from api.problems import PROBLEM_RESPONSES
from api.schemas import PresetView
from shared.models.presets import PRESETS

router = APIRouter(prefix="/v1/presets", tags=["presets"], responses=PROBLEM_RESPONSES)


@router.get("", operation_id="list_presets", response_model=list[PresetView], summary="List presets")
def list_presets() -> list[PresetView]:
    """Each preset with its full spec; submit one as `{"preset": NAME, ...overrides}`."""
    return [PresetView(name=p.name, description=p.description, spec=p.spec()) for p in PRESETS.values()]
