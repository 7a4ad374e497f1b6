from django import template

from partnerships import modes

register = template.Library()


@register.filter
def mode_label(mode: str) -> str:
    return modes.MODE_LABELS.get(mode, mode)


@register.filter
def mode_description(mode: str) -> str:
    return modes.MODE_DESCRIPTIONS.get(mode, "")
