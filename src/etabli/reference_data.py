"""Reference data every installation starts with (loaded by data migrations).

Densities are typical published values for common jewellery alloys; houses edit them.

Names are stored in English and marked for translation: the pages show them in the user's
language for as long as the house keeps the name it was given here.
"""

from django.utils.translation import gettext_noop

OPERATIONS = [
    # (code, name, step)
    ("qualification", gettext_noop("Order qualification"), "order_receipt"),
    ("cad_modelling", gettext_noop("CAD modelling"), "design"),
    ("rendering", gettext_noop("Renders"), "design"),
    ("wax_print", gettext_noop("Wax 3D print"), "prototyping"),
    ("resin_print", gettext_noop("Resin 3D print"), "prototyping"),
    ("prototype_casting", gettext_noop("Prototype casting"), "prototyping"),
    ("material_preparation", gettext_noop("Material preparation"), "manufacturing"),
    ("casting", gettext_noop("Casting"), "manufacturing"),
    ("assembly", gettext_noop("Assembly"), "manufacturing"),
    ("setting", gettext_noop("Stone setting"), "setting"),
    ("polishing", gettext_noop("Polishing"), "finishing"),
    ("plating", gettext_noop("Plating (rhodium)"), "finishing"),
    ("engraving_hallmarking", gettext_noop("Engraving and hallmarking"), "finishing"),
    ("cleaning", gettext_noop("Cleaning"), "finishing"),
    ("inspection", gettext_noop("Quality inspection"), "finishing"),
    ("packing", gettext_noop("Packing"), "delivery"),
    ("shipping", gettext_noop("Shipping"), "delivery"),
]

HOUSE_SKILLS = ["qualification", "cad_modelling", "rendering", "inspection", "cleaning",
                "packing", "shipping"]

ALLOYS = [
    # (code, name, metal, fineness ‰, colour, density g/cm³)
    ("750y", gettext_noop("18k yellow gold (750)"), "gold", 750, "yellow", "15.50"),
    ("750w", gettext_noop("18k white gold (750)"), "gold", 750, "white", "14.70"),
    ("750r", gettext_noop("18k rose gold (750)"), "gold", 750, "rose", "15.10"),
    ("585y", gettext_noop("14k yellow gold (585)"), "gold", 585, "yellow", "13.10"),
    ("585w", gettext_noop("14k white gold (585)"), "gold", 585, "white", "12.60"),
    ("375y", gettext_noop("9k yellow gold (375)"), "gold", 375, "yellow", "11.20"),
    ("999au", gettext_noop("Fine gold (999)"), "gold", 999, "yellow", "19.30"),
    ("950pt", gettext_noop("Platinum 950"), "platinum", 950, "white", "20.10"),
    ("950pd", gettext_noop("Palladium 950"), "palladium", 950, "white", "12.00"),
    ("925ag", gettext_noop("Sterling silver (925)"), "silver", 925, "white", "10.40"),
]

DEFAULT_ROUTE_NAME = gettext_noop("Standard piece (seven steps)")
DEFAULT_ROUTE = [
    # (step, planned days, operations)
    ("order_receipt", 1, ["qualification"]),
    ("design", 3, ["cad_modelling", "rendering"]),
    ("prototyping", 5, ["wax_print"]),
    ("manufacturing", 10, ["material_preparation", "casting", "assembly"]),
    ("setting", 4, ["setting"]),
    ("finishing", 3, ["polishing", "engraving_hallmarking", "cleaning", "inspection"]),
    ("delivery", 2, ["packing", "shipping"]),
]

# The ledger's fixed locations and accounts (workshops get theirs when first used).
MATERIAL_LOCATIONS = [
    ("vault", gettext_noop("House vault")),
    ("refiner", gettext_noop("Refiner")),
    ("in_pieces", gettext_noop("In pieces")),
    ("transit", gettext_noop("In transit on a slip")),
    ("supplier", gettext_noop("Suppliers (purchases)")),
    ("loss", gettext_noop("Losses written off")),
    ("broken", gettext_noop("Broken stones")),
    ("difference", gettext_noop("Weighing differences on slips")),
    ("adjustment", gettext_noop("Stock-take adjustments")),
    ("refining", gettext_noop("Refining conversion")),
    ("delivered", gettext_noop("Delivered to clients")),
]

# House default metal-loss allowances per operation, in % of the metal issued. Typical figures
# for gold; each house sets its own, and per workshop where a workshop is held to another.
LOSS_ALLOWANCES = [
    ("casting", "1.50"),
    ("assembly", "1.00"),
    ("material_preparation", "0.50"),
    ("setting", "0.30"),
    ("polishing", "2.00"),
    ("plating", "0.20"),
    ("engraving_hallmarking", "0.30"),
    ("cleaning", "0.10"),
]
