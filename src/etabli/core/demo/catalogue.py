"""What the demo house is made of: its workshops, clients, people, route templates and models.

Plain data, read by `story.py`. Names, addresses and telephone numbers are invented; e-mail
addresses use the reserved `.example` domain so that nothing can ever be sent to a real person.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

DEMO_PASSWORD = "demo-password-2026"
DEFAULT_SEED = 2026

HOUSE = {
    "address": "7 rue de la Paix\n75002 Paris\nFrance",
    "email": "atelier@maison-etabli.example",
    "phone": "+33 1 42 61 07 70",
    "capacity_benches": 4,
}

# The eight places, besides the house, where pieces are made. `skills` are operation codes
# from `etabli.reference_data.OPERATIONS`.
WORKSHOPS: list[dict] = [
    {
        "code": "fonderie-ricci", "name": "Fonderie Ricci", "kind": "external",
        "skills": ["wax_print", "resin_print", "prototype_casting", "material_preparation",
                   "casting"],
        "capacity_benches": 12,
        "address": "Via Sassi 14\n15048 Valenza (AL)\nItalia",
        "email": "produzione@fonderia-ricci.example", "phone": "+39 0131 94 15 20",
        "contacts": [
            {"name": "Marco Ricci", "function": "Owner, head caster",
             "email": "marco@fonderia-ricci.example", "phone": "+39 0131 94 15 21"},
            {"name": "Chiara Bo", "function": "3D printing and prototypes",
             "email": "chiara@fonderia-ricci.example", "phone": "+39 0131 94 15 24"},
        ],
    },
    {
        "code": "atelier-moreau", "name": "Atelier Moreau", "kind": "external",
        "skills": ["material_preparation", "assembly"],
        "capacity_benches": 5,
        "address": "41 rue de Turenne\n75003 Paris\nFrance",
        "email": "contact@atelier-moreau.example", "phone": "+33 1 48 87 22 41",
        "contacts": [
            {"name": "Paul Moreau", "function": "Master bench jeweller",
             "email": "paul@atelier-moreau.example", "phone": "+33 6 12 48 77 03"},
        ],
    },
    {
        "code": "atelier-interieur", "name": "Atelier intérieur (bench room)", "kind": "internal",
        "skills": ["material_preparation", "assembly"],
        "capacity_benches": 4,
        "address": "7 rue de la Paix, 3rd floor\n75002 Paris\nFrance",
        "email": "etabli@maison-etabli.example", "phone": "+33 1 42 61 07 73",
        "contacts": [
            {"name": "Élodie Garnier", "function": "Head of the bench room",
             "email": "e.garnier@maison-etabli.example", "phone": "+33 1 42 61 07 74"},
        ],
    },
    {
        "code": "sertissage-dumont", "name": "Sertissage Dumont", "kind": "external",
        "skills": ["setting"],
        "capacity_benches": 4,
        "address": "22 rue Chapon\n75003 Paris\nFrance",
        "email": "atelier@sertissage-dumont.example", "phone": "+33 1 42 72 90 16",
        "contacts": [
            {"name": "Antoine Dumont", "function": "Setter (claw, pavé, grain)",
             "email": "antoine@sertissage-dumont.example", "phone": "+33 6 71 20 58 94"},
        ],
    },
    {
        "code": "incastonatura-galli", "name": "Incastonatura Galli", "kind": "external",
        "skills": ["setting"],
        "capacity_benches": 6,
        "address": "Viale della Repubblica 58\n15048 Valenza (AL)\nItalia",
        "email": "laboratorio@incastonatura-galli.example", "phone": "+39 0131 95 33 08",
        "contacts": [
            {"name": "Giulia Galli", "function": "Master setter, high jewellery",
             "email": "giulia@incastonatura-galli.example", "phone": "+39 348 552 1190"},
        ],
    },
    {
        "code": "polissage-lambert", "name": "Polissage & Dorure Lambert", "kind": "external",
        "skills": ["polishing", "plating", "cleaning"],
        "capacity_benches": 6,
        "address": "9 passage du Grand-Cerf\n75002 Paris\nFrance",
        "email": "atelier@polissage-lambert.example", "phone": "+33 1 40 26 55 12",
        "contacts": [
            {"name": "Nathalie Lambert", "function": "Polisher, rhodium plating",
             "email": "nathalie@polissage-lambert.example", "phone": "+33 6 03 91 44 27"},
        ],
    },
    {
        "code": "gravure-peeters", "name": "Gravure Peeters", "kind": "external",
        "skills": ["engraving_hallmarking", "engraving", "serial_engraving"],
        "capacity_benches": 2,
        "address": "Rue des Bouchers 12\n1000 Bruxelles\nBelgique",
        "email": "atelier@gravure-peeters.example", "phone": "+32 2 511 48 30",
        "contacts": [
            {"name": "Pieter Peeters", "function": "Hand engraver (crests, seals)",
             "email": "pieter@gravure-peeters.example", "phone": "+32 475 61 22 09"},
        ],
    },
    {
        "code": "bureau-garantie", "name": "Bureau de garantie de Paris", "kind": "external",
        "skills": ["engraving_hallmarking", "hallmarking", "inspection"],
        "capacity_benches": 20,
        "address": "19 rue Vieille-du-Temple\n75004 Paris\nFrance",
        "email": "garantie-paris@douane.example", "phone": "+33 1 44 54 18 00",
        "contacts": [
            {"name": "Bernard Lefèvre", "function": "Assayer, hallmarking counter",
             "email": "b.lefevre@douane.example", "phone": "+33 1 44 54 18 07"},
        ],
    },
]

# Route templates besides the default "standard" one (created by the migrations). Each step:
# (step, workshop code, planned days, operations).
ROUTE_TEMPLATES: list[dict] = [
    {
        "code": "catalogue", "name": "Catalogue model with stones",
        "description": "A model already designed and proven: no design round, no prototype. "
                       "Cast in Valenza, assembled in Paris, set, polished, inspected.",
        "steps": [
            ("order_receipt", "house", 1, ["qualification"]),
            ("manufacturing", "fonderie-ricci", 4, ["material_preparation", "casting"]),
            ("manufacturing", "atelier-moreau", 4, ["assembly"]),
            ("setting", "sertissage-dumont", 3, ["setting"]),
            ("finishing", "polissage-lambert", 2, ["polishing", "plating", "cleaning"]),
            ("finishing", "house", 1, ["inspection"]),
            ("delivery", "house", 2, ["packing", "shipping"]),
        ],
    },
    {
        "code": "plain-metal", "name": "Plain metal piece (bands, signets, bangles)",
        "description": "Catalogue pieces without stones: cast, finished at the bench room, "
                       "polished, engraved, inspected.",
        "steps": [
            ("order_receipt", "house", 1, ["qualification"]),
            ("manufacturing", "fonderie-ricci", 3, ["material_preparation", "casting"]),
            ("manufacturing", "atelier-interieur", 3, ["assembly"]),
            ("finishing", "polissage-lambert", 2, ["polishing", "cleaning"]),
            ("finishing", "gravure-peeters", 2, ["engraving_hallmarking"]),
            ("finishing", "house", 1, ["inspection"]),
            ("delivery", "house", 1, ["packing", "shipping"]),
        ],
    },
    {
        "code": "haute-joaillerie", "name": "High jewellery (bespoke, hallmarked)",
        "description": "Long design round, resin prototype cast in bronze for the fitting, "
                       "master setter in Valenza, hallmark at the Bureau de garantie.",
        "steps": [
            ("order_receipt", "house", 1, ["qualification"]),
            ("design", "house", 5, ["cad_modelling", "rendering"]),
            ("prototyping", "fonderie-ricci", 5, ["resin_print", "prototype_casting"]),
            ("manufacturing", "fonderie-ricci", 4, ["material_preparation", "casting"]),
            ("manufacturing", "atelier-interieur", 8, ["assembly"]),
            ("setting", "incastonatura-galli", 6, ["setting"]),
            ("finishing", "polissage-lambert", 3, ["polishing", "plating"]),
            ("finishing", "bureau-garantie", 2, ["hallmarking"]),
            ("finishing", "house", 1, ["inspection", "cleaning"]),
            ("delivery", "house", 2, ["packing", "shipping"]),
        ],
    },
]


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: str
    first_name: str
    last_name: str
    workshop: str | None = None
    client: str | None = None
    language: str = "en"

    @property
    def email(self) -> str:
        if self.client:
            return f"{self.username.split('.')[-1]}@{self.client}.example"
        return f"{self.username}@maison-etabli.example"

    @property
    def password(self) -> str:
        return DEMO_PASSWORD


# The demo log-ins, one of every role and one per workshop. All share DEMO_PASSWORD.
DEMO_USERS: list[DemoUser] = [
    DemoUser("admin", "admin", "Hélène", "Marchand", language="fr"),
    DemoUser("manager", "production_manager", "Julien", "Roche", language="fr"),
    DemoUser("sales", "sales", "Inès", "Benali"),
    DemoUser("designer", "designer", "Louis", "Carpentier"),
    DemoUser("quality", "quality", "Sofia", "Marino"),
    DemoUser("logistics", "logistics", "Karim", "Haddad"),
    DemoUser("caster", "workshop", "Marco", "Ricci", workshop="fonderie-ricci"),
    DemoUser("bench1", "workshop", "Paul", "Moreau", workshop="atelier-moreau", language="fr"),
    DemoUser("bench2", "workshop", "Élodie", "Garnier", workshop="atelier-interieur",
             language="fr"),
    DemoUser("setter1", "workshop", "Antoine", "Dumont", workshop="sertissage-dumont",
             language="fr"),
    DemoUser("setter2", "workshop", "Giulia", "Galli", workshop="incastonatura-galli"),
    DemoUser("polisher", "workshop", "Nathalie", "Lambert", workshop="polissage-lambert",
             language="fr"),
    DemoUser("engraver", "workshop", "Pieter", "Peeters", workshop="gravure-peeters"),
    DemoUser("assay", "workshop", "Bernard", "Lefèvre", workshop="bureau-garantie",
             language="fr"),
    DemoUser("client.lemaire", "client", "Anne", "Lemaire", client="bijouterie-lemaire",
             language="fr"),
    DemoUser("client.rousseau", "client", "Camille", "Rousseau", client="camille-rousseau",
             language="fr"),
]

WORKSHOP_MEMBER = {u.workshop: u.username for u in DEMO_USERS if u.workshop}

# (code, name, kind, channel, language, address, contacts)
CLIENTS: list[dict] = [
    {"code": "bijouterie-lemaire", "name": "Bijouterie Lemaire", "kind": "b2b",
     "channel": "retail", "language": "fr", "phone": "+33 4 78 42 16 90",
     "address": "12 rue de la République\n69002 Lyon\nFrance",
     "contacts": [{"name": "Anne Lemaire", "function": "Owner"},
                  {"name": "Yann Perrot", "function": "Workshop liaison"}]},
    {"code": "maison-delacroix", "name": "Maison Delacroix Joaillerie", "kind": "b2b",
     "channel": "retail", "language": "fr", "phone": "+33 1 45 63 20 11",
     "address": "58 avenue Montaigne\n75008 Paris\nFrance",
     "contacts": [{"name": "Victor Delacroix", "function": "Managing director"}]},
    {"code": "galeries-saint-honore", "name": "Galeries Saint-Honoré", "kind": "b2b",
     "channel": "retail", "language": "fr", "phone": "+33 1 53 45 80 00",
     "address": "210 rue Saint-Honoré\n75001 Paris\nFrance",
     "contacts": [{"name": "Sandrine Vidal", "function": "Fine jewellery buyer"}]},
    {"code": "gioielleria-ferraro", "name": "Gioielleria Ferraro", "kind": "b2b",
     "channel": "retail", "language": "en", "phone": "+39 02 7600 4512",
     "address": "Via della Spiga 26\n20121 Milano\nItalia",
     "contacts": [{"name": "Alessandro Ferraro", "function": "Owner"}]},
    {"code": "juwelier-van-acker", "name": "Juwelier Van Acker", "kind": "b2b",
     "channel": "retail", "language": "en", "phone": "+32 9 225 17 40",
     "address": "Veldstraat 44\n9000 Gent\nBelgië",
     "contacts": [{"name": "Els Van Acker", "function": "Owner"}]},
    {"code": "boutique-etoile-du-nord", "name": "Boutique Étoile du Nord", "kind": "b2b",
     "channel": "retail", "language": "fr", "phone": "+33 3 20 55 31 08",
     "address": "3 rue Esquermoise\n59800 Lille\nFrance",
     "contacts": [{"name": "Mathilde Leroux", "function": "Manager"}]},
    {"code": "comptoir-des-alliances", "name": "Comptoir des Alliances", "kind": "b2b",
     "channel": "wholesale", "language": "fr", "phone": "+33 5 56 44 71 22",
     "address": "17 cours de l'Intendance\n33000 Bordeaux\nFrance",
     "contacts": [{"name": "Olivier Baudry", "function": "Purchasing"}]},
    {"code": "van-den-broeck", "name": "Van den Broeck Diamonds", "kind": "b2b",
     "channel": "wholesale", "language": "en", "phone": "+32 3 232 90 41",
     "address": "Hoveniersstraat 30\n2018 Antwerpen\nBelgië",
     "contacts": [{"name": "Jan Van den Broeck", "function": "Director"}]},
    {"code": "ori-di-arezzo", "name": "Ori di Arezzo Distribuzione", "kind": "b2b",
     "channel": "wholesale", "language": "en", "phone": "+39 0575 38 21 90",
     "address": "Via Fiorentina 212\n52100 Arezzo\nItalia",
     "contacts": [{"name": "Francesca Neri", "function": "Sales director"}]},
    {"code": "lumiere-paris", "name": "Lumière Paris (online boutique)", "kind": "b2b",
     "channel": "ecommerce", "language": "fr", "phone": "+33 1 84 60 42 00",
     "address": "88 rue de Rivoli\n75004 Paris\nFrance",
     "contacts": [{"name": "Léa Fournier", "function": "E-commerce manager"}]},
    {"code": "atelier-en-ligne", "name": "Atelier en ligne (webshop)", "kind": "b2c",
     "channel": "ecommerce", "language": "fr", "phone": "",
     "address": "Orders placed on maison-etabli.example", "contacts": []},
    {"code": "camille-rousseau", "name": "Camille Rousseau", "kind": "b2c",
     "channel": "direct", "language": "fr", "phone": "+33 6 22 41 90 57",
     "address": "4 rue Bonaparte\n75006 Paris\nFrance", "contacts": []},
    {"code": "lorenzo-bianchi", "name": "Lorenzo Bianchi", "kind": "b2c",
     "channel": "direct", "language": "en", "phone": "+39 335 712 4480",
     "address": "Corso Magenta 10\n20123 Milano\nItalia", "contacts": []},
    {"code": "sophie-van-damme", "name": "Sophie Van Damme", "kind": "b2c",
     "channel": "direct", "language": "fr", "phone": "+32 478 20 33 91",
     "address": "Avenue Louise 301\n1050 Bruxelles\nBelgique", "contacts": []},
    {"code": "helene-de-montaigu", "name": "Hélène de Montaigu", "kind": "b2c",
     "channel": "direct", "language": "fr", "phone": "+33 6 80 14 27 63",
     "address": "21 boulevard Haussmann\n75009 Paris\nFrance", "contacts": []},
    {"code": "thomas-girard", "name": "Thomas Girard", "kind": "b2c",
     "channel": "direct", "language": "fr", "phone": "+33 6 41 09 72 18",
     "address": "8 place Bellecour\n69002 Lyon\nFrance", "contacts": []},
    {"code": "julie-martin", "name": "Julie Martin", "kind": "b2c",
     "channel": "ecommerce", "language": "fr", "phone": "+33 7 61 33 05 42",
     "address": "15 rue Sainte-Catherine\n33000 Bordeaux\nFrance", "contacts": []},
    {"code": "marc-dubois", "name": "Marc Dubois", "kind": "b2c",
     "channel": "ecommerce", "language": "fr", "phone": "+33 6 58 70 12 36",
     "address": "2 quai de la Fosse\n44000 Nantes\nFrance", "contacts": []},
]


@dataclass(frozen=True)
class Stones:
    description: str
    carats: Decimal
    price_eur: int


@dataclass(frozen=True)
class Model:
    """A piece the house makes: a catalogue model, or a kind of bespoke commission."""

    key: str
    description: str
    model_reference: str  # empty for a custom design
    alloys: tuple[str, ...]
    sizes: tuple[str, ...]
    price_eur: int  # the metal work in 18k gold, without stones
    weight_g: Decimal  # finished weight in 18k yellow gold
    route: str  # route template code
    stones: tuple[Stones, ...] = ()
    customisations: tuple[str, ...] = ("",)
    specifications: str = ""
    references: str = ""
    series: bool = False  # sold by the dozen to shops

    @property
    def custom(self) -> bool:
        return not self.model_reference

    @property
    def has_stones(self) -> bool:
        return bool(self.stones)


RING_SIZES = tuple(str(s) for s in range(48, 61))

MODELS: list[Model] = [
    Model("solitaire", "Solitaire ring 'Aube', six claws", "SOL-AUBE",
          ("950pt", "750w", "750y"), RING_SIZES, 1350, Decimal("4.200"), "catalogue",
          stones=(Stones("1 round brilliant diamond 0.50 ct, F VS1, GIA certificate",
                         Decimal("0.50"), 2900),
                  Stones("1 round brilliant diamond 0.70 ct, G VS2, GIA certificate",
                         Decimal("0.70"), 4700),
                  Stones("1 round brilliant diamond 1.01 ct, E VVS2, GIA certificate",
                         Decimal("1.01"), 11400)),
          customisations=("", "Engraving inside the band: 'Toujours'",
                          "Engraving inside the band: date of the engagement"),
          specifications="Band 2.0 mm, knife-edge; claws 0.9 mm, rounded tips."),
    Model("pave-band", "Half-eternity pavé band 'Constellation', 2.2 mm", "PAV-CONST",
          ("750w", "750r", "750y", "950pt"), RING_SIZES, 1150, Decimal("3.100"), "catalogue",
          stones=(Stones("22 round diamonds 1.5 mm, G VS (0.33 ct total)",
                         Decimal("0.33"), 1350),),
          specifications="Grain-set pavé on the upper half, 2.2 × 1.7 mm section."),
    Model("wedding-band", "Wedding band 'Lien', 3 mm comfort fit", "ALL-LIEN",
          ("750y", "750w", "750r", "950pt", "585y"), RING_SIZES, 690, Decimal("4.600"),
          "plain-metal",
          customisations=("", "Engraving inside: initials and wedding date",
                          "Engraving inside: 'À jamais'"),
          specifications="3.0 × 1.6 mm, comfort-fit inside, high polish.", series=True),
    Model("signet", "Signet ring 'Héritage', oval table 12 × 10 mm", "SIG-HERI",
          ("750y", "750r", "925ag"), RING_SIZES, 1450, Decimal("11.800"), "plain-metal",
          customisations=("Family crest hand-engraved on the table (client's drawing)",
                          "Monogram engraved in reverse, usable as a seal",
                          "Table left plain, satin finish"),
          specifications="Solid shank, tapering from 5 to 3 mm."),
    Model("pendant", "Pendant 'Goutte', pear sapphire with a diamond halo, 42 cm chain",
          "PEN-GOUT", ("750w", "750y"), ("42 cm chain", "45 cm chain"), 950,
          Decimal("2.600"), "catalogue",
          stones=(Stones("1 pear Ceylon sapphire 1.20 ct, 16 round diamonds 1.3 mm G VS "
                         "(0.18 ct)", Decimal("1.38"), 2900),)),
    Model("studs", "Stud earrings 'Rosée', four claws (pair)", "EAR-ROSE",
          ("750w", "950pt", "750y"), ("",), 450, Decimal("2.100"), "catalogue",
          stones=(Stones("2 round diamonds 0.30 ct, G SI1 (0.60 ct total)",
                         Decimal("0.60"), 1900),
                  Stones("2 round diamonds 0.50 ct, F VS2 (1.00 ct total)",
                         Decimal("1.00"), 4300)),
          specifications="Screw-back posts for the platinum version, push-backs otherwise.",
          series=True),
    Model("hoops", "Hoop earrings 'Lune' 20 mm, pavé front (pair)", "EAR-LUNE",
          ("750y", "750r"), ("",), 1650, Decimal("5.400"), "catalogue",
          stones=(Stones("36 round diamonds 1.2 mm, G VS (0.29 ct total)",
                         Decimal("0.29"), 1100),)),
    Model("tennis", "Tennis bracelet 'Rivière', four-claw links", "BRA-RIVI",
          ("750w", "950pt"), ("16 cm", "17 cm", "18 cm", "19 cm"), 2600, Decimal("12.500"),
          "catalogue",
          stones=(Stones("48 round diamonds 2.2 mm, G VS (2.10 ct total)",
                         Decimal("2.10"), 5400),),
          specifications="Box clasp with two safety catches."),
    Model("bangle", "Hinged bangle 'Jonc', 4 mm", "BRA-JONC", ("750y", "750r"),
          ("58 mm inner diameter", "60 mm inner diameter", "62 mm inner diameter"), 2900,
          Decimal("19.500"), "plain-metal",
          specifications="Hollow 4 mm tube, concealed hinge, push clasp with safety."),
    Model("chain-bracelet", "Chain bracelet 'Maille forçat', 19 cm", "BRA-FORC",
          ("925ag", "585y"), ("19 cm",), 890, Decimal("7.800"), "plain-metal",
          specifications="Forçat links 4.5 mm, lobster clasp, tag with the house mark.",
          series=True),
    Model("bespoke-engagement",
          "Bespoke engagement ring: oval sapphire with two pear diamonds (trilogy)", "",
          ("950pt", "750w", "750y"), RING_SIZES, 2400, Decimal("5.200"), "standard",
          stones=(Stones("1 oval Ceylon sapphire 2.10 ct; 2 pear diamonds 0.25 ct F VS "
                         "(0.50 ct)", Decimal("2.60"), 8200),),
          customisations=("Hidden diamond under the gallery", "Engraving inside: 'C & L'"),
          references="Client sketch (scan).pdf\nMood board, 3 photos"),
    Model("bespoke-cocktail",
          "Bespoke cocktail ring: cushion emerald in a diamond surround", "",
          ("750y", "950pt"), RING_SIZES, 3800, Decimal("8.900"), "haute-joaillerie",
          stones=(Stones("1 cushion Colombian emerald 3.40 ct (minor oil, certificate); "
                         "14 round diamonds 2.0 mm F VVS (0.42 ct)", Decimal("3.82"), 21500),),
          references="Stone certificate scan.pdf\nClient's inspiration photos"),
    Model("bespoke-initial", "Bespoke pendant: initial letter in diamond pavé", "",
          ("750y", "750r", "750w"), ("40 cm chain", "42 cm chain"), 780, Decimal("2.200"),
          "standard",
          stones=(Stones("31 round diamonds 1.1 mm, G VS (0.19 ct)", Decimal("0.19"), 690),),
          customisations=("Letter 'L', script font", "Letter 'A', serif font"),
          references="Font proof.pdf"),
    Model("heirloom", "Remodel of a family brooch into a pendant (client's stones)", "",
          ("750y", "750w"), ("45 cm chain",), 1500, Decimal("4.800"), "standard",
          stones=(Stones("Client's stones: 1 old-mine diamond c. 0.80 ct, 12 rose-cut "
                         "diamonds (re-used)", Decimal("1.10"), 0),),
          customisations=("Client supplies the stones: receipt control at the setter",),
          references="Photos of the brooch (4).zip\nStone receipt, signed"),
    Model("bespoke-signet", "Bespoke signet ring with the family crest", "",
          ("750y", "750r"), RING_SIZES, 1900, Decimal("13.500"), "standard",
          customisations=("Crest engraved in reverse (seal), from the client's wax impression",),
          references="Wax impression, photographed.jpg"),
    Model("bespoke-cufflinks", "Bespoke cufflinks, engine-turned ovals with initials", "",
          ("750y", "925ag"), ("",), 1700, Decimal("14.000"), "standard",
          customisations=("Initials 'T.G.' engraved", "Initials 'L.B.' engraved"),
          references="Client's drawing.pdf"),
]

MODELS_BY_KEY = {m.key: m for m in MODELS}

# Price of the metal work relative to 18k gold; weight relative to 18k yellow gold's density.
ALLOY_PRICE_FACTOR = {"750y": Decimal("1"), "750w": Decimal("1.05"), "750r": Decimal("1"),
                      "585y": Decimal("0.8"), "950pt": Decimal("1.3"), "925ag": Decimal("0.18")}
ALLOY_DENSITY = {"750y": Decimal("15.50"), "750w": Decimal("14.70"), "750r": Decimal("15.10"),
                 "585y": Decimal("13.10"), "950pt": Decimal("20.10"),
                 "925ag": Decimal("10.40")}


@dataclass
class Incident:
    """Wording for the things that go wrong in the story."""

    reason: str
    comment: str
    who: str = "member"  # member of the workshop, or a house username
    step: str = ""  # the step where it happens (any when empty)


HOLDS: list[Incident] = [
    Incident("material_unavailable",
             "Centre stone not yet delivered by the dealer; expected next week.", step="setting"),
    Incident("quality_stop", "Porosity found on the shank while pre-polishing; waiting for the "
             "production manager's decision.", step="finishing"),
    Incident("capacity", "Bench fully booked with the wholesale series; resumes Monday.",
             step="manufacturing"),
    Incident("client_change_request", "Waiting for the client's decision on the change "
             "request.", who="sales", step="setting"),
    Incident("other", "Client travelling: ring size to be confirmed at a fitting.",
             who="manager", step="manufacturing"),
    Incident("material_unavailable", "Rhodium bath being renewed; plating postponed.",
             step="finishing"),
]

# Held and released again on the way (while the piece waits at the workshop).
MID_HOLDS: list[Incident] = [
    Incident("material_unavailable", "Waiting for the casting grain delivery.",
             step="manufacturing"),
    Incident("capacity", "Casting tree full; piece goes in the next flask.",
             step="manufacturing"),
    Incident("quality_stop", "Weight differs from the slip; re-weighed and checked with the "
             "sender."),
]

REWORKS_AT_FINISHING = [
    "Claw on the centre stone lifted during polishing: re-set, then polish again.",
    "Two pavé stones loose under the loupe: re-set the row and re-polish.",
    "Rhodium plating uneven on the shank: strip, re-polish and re-plate.",
]
REWORKS_AT_SETTING = [
    "Porosity under the bezel found when setting: back to the bench for repair.",
    "Seat cut too shallow for the supplied stone: bench to rework the gallery.",
]

RINGS = ("solitaire", "pave-band", "wedding-band", "signet", "bespoke-engagement",
         "bespoke-cocktail", "bespoke-signet")
PENDANTS = ("pendant", "bespoke-initial", "heirloom")

# (description, impact in days, assessment, models it applies to — any when empty)
CHANGE_REQUESTS: list[tuple[str, int, str, tuple[str, ...]]] = [
    ("Client would like the band narrowed from 2.5 mm to 2.2 mm.", 3,
     "CAD update and a new print: three days.", ("bespoke-engagement", "bespoke-cocktail")),
    ("Client asks to change the metal from white to rose gold.", 4,
     "New casting needed: four days more, same price (same fineness).", ()),
    ("Add an engraving inside the band: 'Pour toujours'.", 1,
     "One more day at the engraver; no impact on the promise.", RINGS),
    ("Client asks for a larger centre stone (0.70 ct instead of 0.50 ct).", 7,
     "New stone to source from the dealer; setting plan unchanged.",
     ("solitaire", "bespoke-engagement")),
    ("Change the chain length from 42 cm to 45 cm.", 1,
     "Chain swapped at packing; no impact on the workshops.", PENDANTS),
    ("Please deliver to our Lyon shop instead of the Paris office.", 0,
     "Shipping address only; no impact.", ()),
    ("Could a matching pair of earrings be added to the set?", 12,
     "Needs a new design round: better handled as a separate order.", ()),
    ("Ring size changes from 52 to 54.", 2, "Shank to be re-cut at the bench: two days.",
     RINGS),
    ("Client asks for a satin finish instead of high polish.", 1,
     "Finishing only: one more day at the polisher.", ()),
    ("Please add a gift box with the shop's card.", 0, "Packing only; no impact.", ()),
]

CANCEL_REASONS = [
    "Quote declined: the client chose a stock piece instead.",
    "Client withdrew: budget postponed to next season.",
]

OVERRIDE_REASONS = [
    "Wedding on the promised date; the bench room keeps two benches free for this piece.",
    "Shop event on that weekend; the caster has agreed an express flask.",
]

STEP_NOTES = {
    "design": "CAD validated by the client",
    "prototyping": "Fitting done; proportions approved",
    "manufacturing": "Raw piece ready",
    "setting": "Stones set per plan, receipt control OK",
    "finishing": "Finished and checked",
    "delivery": "Shipped, insured",
}

__all__ = [
    "CHANGE_REQUESTS", "CLIENTS", "DEFAULT_SEED", "DEMO_PASSWORD", "DEMO_USERS", "HOUSE",
    "MODELS", "ROUTE_TEMPLATES", "WORKSHOPS", "DemoUser", "Model", "Stones",
]
