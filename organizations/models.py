"""Organizations, their members and their licenses."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.urls import reverse
from django.utils.text import slugify

from .archiving import ArchivableModel, LiveManager
from .logos import LogoField
from .natural_keys import NaturalKeyModel, NaturalKeyQuerySet, normalise_part, unique_natural_key
from .validators import validate_logo, validate_name

DUPLICATE_NAME = (
    "Another organization on Channel Data Sync already has this name. Choose a name that "
    "tells your organization apart."
)


def organization_name_key(name: str | None) -> str:
    """The form in which organization names are compared: the one normalisation of names
    (``natural_keys.normalise_part``: compatibility forms, case, spaces)."""
    return normalise_part(name)


class NameKeyField(models.CharField):
    """The compared form of another field (``organization_name_key``), written with the row.

    Computed in Python, not in SQL: PostgreSQL's lower() follows the database's locale while
    SQLite's folds ASCII letters only, so a constraint on ``Lower(Trim("name"))`` would hold
    different rules on the two databases, and neither would match what Python checks. A
    unique constraint on this column compares the same strings everywhere. It is filled in
    ``pre_save``, which ``save()`` and ``bulk_create()`` both call (``update()`` does not).
    """

    def __init__(self, *args, populate_from: str, **kwargs) -> None:
        self.populate_from = populate_from
        kwargs.setdefault("editable", False)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["populate_from"] = self.populate_from
        return name, path, args, kwargs

    def pre_save(self, model_instance, add):
        value = organization_name_key(getattr(model_instance, self.populate_from))
        setattr(model_instance, self.attname, value)
        return value


#: How many times a new organization picks a free slug when others take it meanwhile.
SLUG_ATTEMPTS = 5


class Organization(models.Model):
    name = models.CharField(max_length=200, validators=[validate_name])
    # casefold() turns a character into at most three (ß → ss)
    name_key = NameKeyField(populate_from="name", max_length=600)
    slug = models.SlugField(max_length=80, unique=True)
    logo = LogoField(upload_to="logos/", blank=True, validators=[validate_logo])
    logo_copied_from = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        editable=False,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The channel manager whose logo this is a copy of, made when this "
        "organization joined through its invitation (empty once the logo is replaced).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["name_key"],
                name="organization_unique_name",
                violation_error_message=DUPLICATE_NAME,
            ),
        ]
        # Lists of partners are ordered by name: with this index a page of the Partnerships
        # tab reads its 25 partners in order instead of sorting every partner of the channel
        # manager (docs/design.md §10).
        indexes = [models.Index(fields=["name"], name="organization_name_idx")]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "name" in update_fields:
            kwargs["update_fields"] = {*update_fields, "name_key"}  # computed from the name
        if self.slug:
            super().save(*args, **kwargs)
            return
        # Two organizations of the same name created at the same moment both find the same
        # slug free; the unique index refuses the second, which picks again once it sees the
        # first (a savepoint keeps the caller's transaction usable).
        for attempt in range(1, SLUG_ATTEMPTS + 1):
            self.slug = self.unique_slug_for(self.name)
            try:
                with transaction.atomic():
                    super().save(*args, **kwargs)
            except IntegrityError:
                taken = Organization.objects.filter(slug=self.slug).exists()
                self.slug = ""
                if not taken or attempt == SLUG_ATTEMPTS:
                    raise
            else:
                return

    def get_absolute_url(self) -> str:
        return reverse("organizations:settings", kwargs={"org": self.slug})

    @property
    def name_with_slug(self) -> str:
        """How an organization is shown to other organizations: "Summit Solar (summit-solar)".

        Names are unique only up to case and spacing, and they are chosen by the organization
        itself; the slug is unique and chosen by the platform, so it tells lookalikes apart.
        """
        return f"{self.name} ({self.slug})" if self.slug else self.name

    def clean(self) -> None:
        super().clean()
        if Organization.name_taken(self.name, exclude=self):
            raise ValidationError({"name": ValidationError(DUPLICATE_NAME, code="duplicate")})

    def validate_constraints(self, exclude=None) -> None:
        # The unique name is checked by clean(), beside the name field (a form never shows
        # name_key, so Django would skip the constraint there anyway).
        super().validate_constraints(exclude={*(exclude or ()), "name_key"})

    @classmethod
    def name_taken(cls, name: str | None, *, exclude: Organization | None = None) -> bool:
        """Whether another organization is called ``name`` (compared as the database does)."""
        key = organization_name_key(name)
        others = cls.objects.filter(name_key=key)
        if exclude is not None and exclude.pk is not None:
            others = others.exclude(pk=exclude.pk)
        return bool(key) and others.exists()

    @classmethod
    def unique_slug_for(cls, name: str) -> str:
        """A free slug derived from ``name`` ("Sunrise Solar" → "sunrise-solar-2" if taken)."""
        base = slugify(name)[:70] or "organization"
        taken = set(cls.objects.filter(slug__startswith=base).values_list("slug", flat=True))
        slug, n = base, 2
        while slug in taken:
            slug, n = f"{base}-{n}", n + 1
        return slug


class MembershipQuerySet(models.QuerySet):
    def for_user(self, user) -> MembershipQuerySet:
        return self.for_users([user.pk])

    def for_users(self, user_ids: list[int]) -> MembershipQuerySet:
        """The memberships of these users with their organizations, by organization name."""
        return (
            self.filter(user_id__in=user_ids)
            .select_related("organization")
            .order_by("organization__name")
        )


class Membership(models.Model):
    class Role(models.TextChoices):
        ADMIN = "admin", "Admin"
        MEMBER = "member", "Member"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "organization"],
                name="membership_one_per_user_and_organization",
                violation_error_message="This user is already a member of the organization.",
            ),
            models.CheckConstraint(
                condition=models.Q(role__in=["admin", "member"]),
                name="membership_role_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.organization} ({self.get_role_display()})"

    @property
    def is_admin(self) -> bool:
        return self.role == self.Role.ADMIN


class License(NaturalKeyModel, ArchivableModel):
    NATURAL_KEY = ("jurisdiction", "number")

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="licenses"
    )
    license_type = models.CharField(
        max_length=100, validators=[validate_name], help_text="e.g. C-10 Electrical Contractor"
    )
    number = models.CharField(max_length=60, validators=[validate_name])
    jurisdiction = models.CharField(
        max_length=100, validators=[validate_name], help_text="State or authority, e.g. California"
    )
    expires_on = models.DateField(null=True, blank=True)
    copied_from_organization = models.ForeignKey(
        Organization,
        null=True,
        blank=True,
        editable=False,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The channel manager this license was copied from when this organization "
        "joined through its invitation (empty for the organization's own).",
    )

    objects = LiveManager.from_queryset(NaturalKeyQuerySet)()
    all_objects = models.Manager.from_queryset(NaturalKeyQuerySet)()

    class Meta(ArchivableModel.Meta):
        ordering = ["jurisdiction", "number"]
        constraints = [
            unique_natural_key(
                "license_unique_jurisdiction_number",
                message="This organization already has a license with this number in this "
                "jurisdiction.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.license_type} {self.number} ({self.jurisdiction})"
