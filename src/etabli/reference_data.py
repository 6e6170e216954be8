"""Reference data every installation starts with (loaded by data migrations).

Densities are typical published values for common jewellery alloys; houses edit them.
"""

OPERATIONS = [
    # (code, name, step)
    ("qualification", "Order qualification", "order_receipt"),
    ("cad_modelling", "CAD modelling", "design"),
    ("rendering", "Renders", "design"),
    ("wax_print", "Wax 3D print", "prototyping"),
    ("resin_print", "Resin 3D print", "prototyping"),
    ("prototype_casting", "Prototype casting", "prototyping"),
    ("material_preparation", "Material preparation", "manufacturing"),
    ("casting", "Casting", "manufacturing"),
    ("assembly", "Assembly", "manufacturing"),
    ("setting", "Stone setting", "setting"),
    ("polishing", "Polishing", "finishing"),
    ("plating", "Plating (rhodium)", "finishing"),
    ("engraving_hallmarking", "Engraving and hallmarking", "finishing"),
    ("cleaning", "Cleaning", "finishing"),
    ("inspection", "Quality inspection", "finishing"),
    ("packing", "Packing", "delivery"),
    ("shipping", "Shipping", "delivery"),
]

HOUSE_SKILLS = ["qualification", "cad_modelling", "rendering", "inspection", "cleaning",
                "packing", "shipping"]

ALLOYS = [
    # (code, name, metal, fineness ‰, colour, density g/cm³)
    ("750y", "18k yellow gold (750)", "gold", 750, "yellow", "15.50"),
    ("750w", "18k white gold (750)", "gold", 750, "white", "14.70"),
    ("750r", "18k rose gold (750)", "gold", 750, "rose", "15.10"),
    ("585y", "14k yellow gold (585)", "gold", 585, "yellow", "13.10"),
    ("585w", "14k white gold (585)", "gold", 585, "white", "12.60"),
    ("375y", "9k yellow gold (375)", "gold", 375, "yellow", "11.20"),
    ("999au", "Fine gold (999)", "gold", 999, "yellow", "19.30"),
    ("950pt", "Platinum 950", "platinum", 950, "white", "20.10"),
    ("950pd", "Palladium 950", "palladium", 950, "white", "12.00"),
    ("925ag", "Sterling silver (925)", "silver", 925, "white", "10.40"),
]

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
