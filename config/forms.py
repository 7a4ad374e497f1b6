"""Project-wide form rendering: Bootstrap classes and accessible errors on every field.

Set as ``FORM_RENDERER``, so every form (ours and the auth views') renders the same way
without per-form styling code.
"""

from __future__ import annotations

from django import forms
from django.forms.boundfield import BoundField
from django.forms.renderers import TemplatesSetting


def _css_class(widget: forms.Widget) -> str:
    if isinstance(widget, (forms.CheckboxInput, forms.RadioSelect, forms.CheckboxSelectMultiple)):
        return "form-check-input"
    if isinstance(widget, forms.Select):
        return "form-select"
    return "form-control"


class BootstrapBoundField(BoundField):
    def build_widget_attrs(self, attrs, widget=None):
        attrs = super().build_widget_attrs(attrs, widget)
        widget = widget or self.field.widget
        if widget.is_hidden:
            return attrs
        classes = [attrs.get("class", ""), _css_class(widget)]
        if self.errors:
            classes.append("is-invalid")
        attrs["class"] = " ".join(c for c in classes if c)
        return attrs

    @property
    def is_checkbox(self) -> bool:
        return isinstance(self.field.widget, forms.CheckboxInput)


class FormRenderer(TemplatesSetting):
    bound_field_class = BootstrapBoundField
    field_template_name = "forms/field.html"
