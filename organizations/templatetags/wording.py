"""Template filters for :mod:`organizations.wording`."""

from django import template

from organizations import wording

register = template.Library()

register.filter("possessive", wording.possessive)
register.filter("duration", wording.duration)
