"""Demo settings: a realistic catalogue for the channel manager, a few items of the
partners' own, never-synced settings, and shared proposal templates. Loaded into the
organizations the demo has just created only, so a second run changes nothing
(``organizations.demo.DemoLoad``)."""

from __future__ import annotations

from decimal import Decimal as D

from organizations.demo import DemoLoad
from organizations.models import Organization

from . import registry

EQUIPMENT = [
    ("module", "REC Solar", "Alpha Pure-R 410", 410, 265),
    ("module", "Qcells", "Q.TRON BLK M-G2+ 425", 425, 248),
    ("module", "Canadian Solar", "HiKu6 CS6R-410MS", 410, 205),
    ("module", "Panasonic", "EverVolt EVPV410H", 410, 290),
    ("module", "Silfab", "SIL-430 QD", 430, 255),
    ("inverter", "Enphase", "IQ8M-72-2-US", 325, 198),
    ("inverter", "Enphase", "IQ8A-72-2-US", 349, 215),
    ("inverter", "SolarEdge", "SE7600H-US", 7600, 1650),
    ("inverter", "Tesla", "Solar Inverter 7.6 kW", 7600, 1500),
    ("battery", "Tesla", "Powerwall 3", D("13.5"), 9200),
    ("battery", "Enphase", "IQ Battery 5P", 5, 4300),
    ("battery", "FranklinWH", "aPower 2", 15, 9800),
    ("optimizer", "SolarEdge", "S440", 440, 62),
    ("racking", "IronRidge", "XR100 Rail", None, 38),
    ("racking", "Unirac", "SolarMount", None, 35),
    ("energy_efficiency", "Rheem", "ProTerra Heat Pump Water Heater 50 gal", None, 2100),
]
ADDERS = [
    ("Trenching (per 50 ft)", "fixed", 1250, False),
    ("Tile roof", "per_watt", D("0.35"), False),
    ("Main panel upgrade", "fixed", 2800, False),
    ("Steep roof (over 8/12)", "per_watt", D("0.10"), False),
    ("Critter guard", "per_module", 18, False),
    ("Ground mount", "per_watt", D("0.45"), False),
    ("Permit and interconnection", "fixed", 650, True),
    ("Dealer fee", "percent", D("3.5"), True),
]
PROFILE_SUMMER_PEAK = [7, 6, 7, 8, 9, 10, 11, 11, 9, 8, 7, 7]
PROFILE_WINTER_PEAK = [11, 10, 9, 7, 6, 7, 8, 8, 7, 7, 9, 11]
PERSONAS = [
    ("Small apartment", 5500, None, "One or two people, gas heating and cooking."),
    ("Family of four", 11000, PROFILE_SUMMER_PEAK, "Central air conditioning, pool pump."),
    ("EV owner", 14500, PROFILE_SUMMER_PEAK, "One electric car charged at home every night."),
    ("All-electric home", 18000, PROFILE_WINTER_PEAK, "Heat pump heating, induction cooking."),
    ("Retired couple", 8000, PROFILE_WINTER_PEAK, "At home during the day, electric heat."),
]
RATE_ESCALATIONS = [
    ("Pacific Gas & Electric", D("6.5")),
    ("Southern California Edison", D("5.8")),
    ("San Diego Gas & Electric", D("7.2")),
    ("Florida Power & Light", D("3.9")),
    ("Duke Energy", D("3.5")),
    ("Arizona Public Service", D("4.1")),
    ("Xcel Energy", D("3.2")),
    ("Dominion Energy", D("3.0")),
]
COMPARABLES = [
    ("Trees planted", "trees", D("16.5")),
    ("Miles not driven", "miles", D("2480")),
    ("Smartphones charged", "phones", D("121643")),
    ("Gallons of gasoline saved", "gallons", D("112.5")),
]


def _collection(key: str, organization: Organization, rows: list[dict]) -> None:
    model = registry.get(key).model
    for values in rows:
        model.objects.create(organization=organization, **values)


def _singleton(key: str, organization: Organization, **values) -> None:
    row = registry.get(key).model.for_organization(organization)
    for name, value in values.items():
        setattr(row, name, value)
    row.save()


def load(demo: DemoLoad) -> None:
    helios = Organization.objects.get(slug="helios-energy")
    if demo.is_new(helios):
        _channel_manager(helios)
    sunrise = Organization.objects.get(slug="sunrise-solar")
    coastal = Organization.objects.get(slug="coastal-roofing-solar")
    blue_ridge = Organization.objects.get(slug="blue-ridge-electric")
    # Partners' own settings, which merge keeps and match archives.
    if demo.is_new(sunrise):
        _sunrise(sunrise)
    if demo.is_new(coastal):
        _collection(
            "adders",
            coastal,
            [
                {"name": "Hurricane straps", "pricing": "per_module", "amount": 12},
                {"name": "Tile roof", "pricing": "per_watt", "amount": D("0.40")},
            ],
        )
    if demo.is_new(blue_ridge):
        _collection(
            "rate_escalations",
            blue_ridge,
            [{"utility_name": "Appalachian Power", "annual_escalation_percent": D("4.4")}],
        )


def _channel_manager(helios: Organization) -> None:
    """Helios's catalogue, its shared proposal templates and its never-synced settings."""
    fields = registry.get("equipment").synced_fields
    _collection(
        "equipment",
        helios,
        [dict(zip(fields, (*row, True), strict=True)) for row in EQUIPMENT],
    )
    _collection(
        "adders",
        helios,
        [dict(zip(registry.get("adders").synced_fields, row, strict=True)) for row in ADDERS],
    )
    _collection(
        "personas",
        helios,
        [dict(zip(registry.get("personas").synced_fields, row, strict=True)) for row in PERSONAS],
    )
    _collection(
        "rate_escalations",
        helios,
        [
            dict(zip(registry.get("rate_escalations").synced_fields, row, strict=True))
            for row in RATE_ESCALATIONS
        ],
    )
    _collection(
        "comparable_values",
        helios,
        [
            dict(zip(registry.get("comparable_values").synced_fields, row, strict=True))
            for row in COMPARABLES
        ],
    )
    _singleton(
        "default_costs",
        helios,
        module_cost_per_watt=D("0.42"),
        inverter_cost_per_watt=D("0.18"),
        battery_cost_per_kwh=D("620"),
        energy_efficiency_cost=D("1500"),
        project_cost_per_watt=D("2.65"),
    )
    _singleton("installation_dates", helios, contract_to_install_days=28, install_to_pto_days=18)
    _singleton("proposal_expiration", helios, days_valid=21)
    _singleton(
        "proposal_email",
        helios,
        subject="Your Helios Energy solar proposal",
        reply_to="proposals@helios-energy.example",
        cc="records@helios-energy.example",
    )

    _outside_the_sync(
        helios,
        templates=[
            ("Helios Standard Residential", "Our default 8-page proposal."),
            ("Helios Premium with Storage", "Adds backup power and savings pages."),
        ],
        integration=("salesforce", "helios.my.salesforce"),
    )


def _sunrise(sunrise: Organization) -> None:
    _collection(
        "adders",
        sunrise,
        [{"name": "Tree removal", "pricing": "fixed", "amount": 900, "applied_by_default": False}],
    )
    _outside_the_sync(
        sunrise,
        templates=[("Sunrise one-pager", "A single page for quick quotes.")],
        integration=("enphase", "sunrise-installer-4471"),
    )


def _outside_the_sync(
    organization: Organization, *, templates: list[tuple[str, str]], integration: tuple[str, str]
) -> None:
    """Proposal templates (shared with partners, never copied), loans and an integration."""
    from .proposal.models import ProposalTemplate
    from .unsynced.models import FinancingProduct, Integration

    for name, description in templates:
        ProposalTemplate.objects.create(
            organization=organization, name=name, description=description
        )
    for name, lender, apr, term, fee in [
        ("25-year loan", "GoodLeap", D("6.99"), 300, D("25")),
        ("20-year loan", "Mosaic", D("5.99"), 240, D("22")),
        ("12-year loan", "Sunlight Financial", D("3.99"), 144, D("18")),
    ]:
        FinancingProduct.objects.create(
            organization=organization,
            lender=lender,
            name=name,
            apr_percent=apr,
            term_months=term,
            dealer_fee_percent=fee,
        )
    provider, account = integration
    Integration.objects.create(organization=organization, provider=provider, account=account)
