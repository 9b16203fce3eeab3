"""The clinical vocabulary of the synthetic area: conditions, measurements, drugs, hospital codes.

Everything clinical that ``confide synth`` writes comes from these tables, so a reviewer can see
(and a test can check) every SNOMED CT and dm+d identifier in one place. Prevalences and values
are rough English figures (QOF registers, Health Survey for England), good enough to make
counts, joins and suppression behave as they would on real data.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Drug:
    """A dm+d medicinal product issued as a repeat or acute prescription."""

    code: str
    term: str
    dosage: str
    quantity: float
    unit: str


@dataclass(frozen=True)
class Chronic:
    """A long-term condition: who gets it, when, how it is monitored and treated."""

    key: str
    code: str
    term: str
    prevalence: float  # share of the eligible population with the condition
    min_age: int  # onset is never before this age
    age_slope: float  # relative risk grows by exp(slope * (age - 50))
    female_ratio: float  # relative risk of women against men
    drugs: tuple[Drug, ...]
    icd10: str  # the code a hospital records it under as a secondary diagnosis


@dataclass(frozen=True)
class Acute:
    """A short illness seen in primary care, sometimes treated with a short course."""

    code: str
    term: str
    rate: float  # episodes per person-year
    drug: Drug | None
    treated: float  # share of episodes given the drug


@dataclass(frozen=True)
class Measure:
    """A measurement with a value and a UCUM-style unit."""

    code: str
    term: str
    unit: str
    decimals: int


# --- drugs (dm+d VMP identifiers) ---------------------------------------------------------------

METFORMIN = Drug(
    "325278007",
    "Metformin 500mg tablets",
    "Take ONE tablet twice a day with meals",
    56,
    "tablet",
)
GLICLAZIDE = Drug(
    "325281002", "Gliclazide 80mg tablets", "Take ONE tablet twice a day", 56, "tablet"
)
INSULIN = Drug(
    "39113611000001102",
    "Insulin glargine 100units/ml solution for injection 3ml pre-filled pens",
    "Inject as directed by the diabetes team",
    5,
    "pre-filled disposable injection",
)
RAMIPRIL = Drug("318906001", "Ramipril 5mg capsules", "Take ONE capsule daily", 28, "capsule")
AMLODIPINE = Drug("319283006", "Amlodipine 5mg tablets", "Take ONE tablet once a day", 28, "tablet")
BISOPROLOL = Drug(
    "319740004", "Bisoprolol 2.5mg tablets", "Take ONE tablet each morning", 28, "tablet"
)
ATORVASTATIN = Drug(
    "320000009", "Atorvastatin 20mg tablets", "Take ONE tablet at night", 28, "tablet"
)
SIMVASTATIN = Drug(
    "320006003", "Simvastatin 40mg tablets", "Take ONE tablet at night", 28, "tablet"
)
SALBUTAMOL = Drug(
    "320176004",
    "Salbutamol 100micrograms/dose inhaler CFC free",
    "Inhale TWO puffs when required for breathlessness",
    1,
    "inhaler",
)
BECLOMETASONE = Drug(
    "324095003",
    "Beclometasone 100micrograms/dose inhaler CFC free",
    "Inhale TWO puffs twice a day; rinse mouth after use",
    1,
    "inhaler",
)
SERTRALINE = Drug("321949006", "Sertraline 50mg tablets", "Take ONE tablet daily", 28, "tablet")
CITALOPRAM = Drug("321988008", "Citalopram 20mg tablets", "Take ONE tablet daily", 28, "tablet")
FLUOXETINE = Drug(
    "321946004", "Fluoxetine 20mg capsules", "Take ONE capsule each morning", 30, "capsule"
)
APIXABAN = Drug("324357002", "Apixaban 5mg tablets", "Take ONE tablet twice a day", 56, "tablet")
LEVETIRACETAM = Drug(
    "318135008", "Levetiracetam 500mg tablets", "Take ONE tablet twice a day", 56, "tablet"
)
METHOTREXATE = Drug(
    "322280009",
    "Methotrexate 2.5mg tablets",
    "Take FOUR tablets once a WEEK on the same day",
    24,
    "tablet",
)
AMOXICILLIN = Drug(
    "323509004",
    "Amoxicillin 500mg capsules",
    "Take ONE capsule three times a day for 5 days",
    15,
    "capsule",
)
TRIMETHOPRIM = Drug(
    "318248001",
    "Trimethoprim 200mg tablets",
    "Take ONE tablet twice a day for 3 days",
    6,
    "tablet",
)
NAPROXEN = Drug(
    "329652003",
    "Naproxen 500mg tablets",
    "Take ONE tablet twice a day with food",
    28,
    "tablet",
)
PARACETAMOL = Drug(
    "322236009",
    "Paracetamol 500mg tablets",
    "Take ONE or TWO tablets up to four times a day",
    32,
    "tablet",
)
SODIUM_CHLORIDE = Drug(
    "39720311000001101",
    "Sodium chloride 0.9% nasal drops",
    "Use as directed",
    10,
    "ml",
)

# --- long-term conditions ------------------------------------------------------------------------

CHRONIC: tuple[Chronic, ...] = (
    Chronic("t2dm", "44054006", "Type 2 diabetes mellitus", 0.07, 25, 0.045, 0.8,
            (METFORMIN, GLICLAZIDE, ATORVASTATIN), "E11.9"),
    Chronic("t1dm", "46635009", "Type 1 diabetes mellitus", 0.005, 1, 0.0, 0.9,
            (INSULIN,), "E10.9"),
    Chronic("htn", "38341003", "Hypertensive disorder, systemic arterial", 0.14, 25, 0.05, 1.0,
            (RAMIPRIL, AMLODIPINE), "I10"),
    Chronic("asthma", "195967001", "Asthma", 0.06, 2, -0.005, 1.2,
            (SALBUTAMOL, BECLOMETASONE), "J45.9"),
    Chronic("copd", "13645005", "Chronic obstructive lung disease", 0.02, 40, 0.06, 0.9,
            (SALBUTAMOL,), "J44.9"),
    Chronic("depression", "35489007", "Depressive disorder", 0.10, 14, -0.005, 1.6,
            (SERTRALINE, CITALOPRAM, FLUOXETINE), "F32.9"),
    Chronic("anxiety", "197480006", "Anxiety disorder", 0.07, 14, -0.01, 1.7,
            (SERTRALINE,), "F41.9"),
    Chronic("af", "49436004", "Atrial fibrillation", 0.02, 40, 0.09, 0.8,
            (APIXABAN, BISOPROLOL), "I48.9"),
    Chronic("chd", "53741008", "Coronary arteriosclerosis", 0.03, 35, 0.07, 0.6,
            (ATORVASTATIN, BISOPROLOL), "I25.1"),
    Chronic("ckd", "709044004", "Chronic kidney disease", 0.04, 30, 0.08, 1.2,
            (), "N18.3"),
    Chronic("stroke", "230690007", "Cerebrovascular accident", 0.018, 35, 0.08, 0.9,
            (SIMVASTATIN,), "I69.3"),
    Chronic("epilepsy", "84757009", "Epilepsy", 0.008, 1, 0.0, 1.0,
            (LEVETIRACETAM,), "G40.9"),
    Chronic("ra", "69896004", "Rheumatoid arthritis", 0.008, 20, 0.02, 2.5,
            (METHOTREXATE,), "M06.9"),
)  # fmt: skip
CHRONIC_INDEX = {c.key: i for i, c in enumerate(CHRONIC)}

# --- short illnesses -----------------------------------------------------------------------------

ACUTE: tuple[Acute, ...] = (
    Acute("54150009", "Upper respiratory infection", 0.22, AMOXICILLIN, 0.3),
    Acute("68566005", "Urinary tract infectious disease", 0.06, TRIMETHOPRIM, 0.8),
    Acute("279039007", "Low back pain", 0.06, NAPROXEN, 0.5),
    Acute("25064002", "Headache", 0.04, PARACETAMOL, 0.4),
    Acute("42343007", "Congestive heart failure", 0.002, None, 0.0),
    Acute("271737000", "Anaemia", 0.01, None, 0.0),
    Acute("840539006", "Disease caused by severe acute respiratory syndrome coronavirus 2", 0.03,
          None, 0.0),
    Acute("68235000", "Nasal congestion", 0.02, SODIUM_CHLORIDE, 0.5),
)  # fmt: skip

# --- measurements --------------------------------------------------------------------------------

BMI = Measure("60621009", "Body mass index", "kg/m2", 1)
WEIGHT = Measure("27113001", "Body weight", "kg", 1)
HEIGHT = Measure("50373000", "Body height measure", "cm", 0)
SYSTOLIC = Measure("72313002", "Systolic arterial pressure", "mm[Hg]", 0)
DIASTOLIC = Measure("1091811000000102", "Diastolic arterial pressure", "mm[Hg]", 0)
HBA1C = Measure(
    "1049301000000100",
    "Haemoglobin A1c level - International Federation of Clinical Chemistry and Laboratory "
    "Medicine standardised",
    "mmol/mol",
    0,
)
CHOLESTEROL = Measure("1005671000000105", "Serum cholesterol level", "mmol/L", 1)
EGFR = Measure(
    "1011481000000105",
    "eGFR (estimated glomerular filtration rate) using creatinine CKD-EPI equation per 1.73 "
    "square metres",
    "mL/min/{1.73_m2}",
    0,
)

# Coded findings without a value.
SMOKING = (
    ("266919005", "Never smoked tobacco", 0.55),
    ("8517006", "Ex-smoker", 0.32),
    ("77176002", "Smoker", 0.13),
)
FLU_VACCINE = (
    "86198006",
    "Administration of vaccine product containing only Influenza virus antigen",
)
MED_REVIEW = ("394720003", "Medication review")

# Allergies (AllergyIntolerance.code) and immunisations (Immunization.vaccineCode), with the
# share of people who have one: both are in UK Core and in every GP extraction. A vaccine
# product is a dm+d concept (sent under dm+d or, by its namespace, under SNOMED CT).
ALLERGIES = (
    ("91936005", "Allergy to penicillin", 0.06),
    ("91935009", "Allergy to peanut", 0.02),
    ("300913006", "Shellfish allergy", 0.01),
)
IMMUNISATIONS = (
    (
        "11278411000001109",
        "Influenza vaccine (split virion, inactivated) suspension for injection 0.5ml "
        "pre-filled syringes",
        0.25,
    ),
)
SMEAR = ("171149006", "Cervical smear screening test")

# Short notes a clinician types; the practice agent must drop them.
NOTES = (
    "Patient reports feeling better",
    "Reviewed in clinic, plan discussed",
    "Telephone consultation",
    "Seen with daughter",
    "Advised to return if no improvement in 1 week",
    "Home visit",
    "Results discussed with patient",
    "Patient declined further tests",
)

# --- hospital (ICD-10, OPCS-4, admission method) --------------------------------------------------

# (ICD-10 primary diagnosis, description, OPCS-4 procedures usually done, elective?)
HOSPITAL_REASONS: tuple[tuple[str, str, tuple[str, ...], bool], ...] = (
    ("J18.9", "Pneumonia, unspecified", (), False),
    ("N39.0", "Urinary tract infection, site not specified", (), False),
    ("R07.4", "Chest pain, unspecified", (), False),
    ("I21.9", "Acute myocardial infarction, unspecified", ("K49.1", "K75.1"), False),
    ("I50.9", "Heart failure, unspecified", (), False),
    ("J44.1", "COPD with acute exacerbation", (), False),
    ("I63.9", "Cerebral infarction, unspecified", ("U05.1",), False),
    ("S72.0", "Fracture of neck of femur", ("W46.1",), False),
    ("K35.8", "Acute appendicitis, other and unspecified", ("H01.1",), False),
    ("R55", "Syncope and collapse", (), False),
    ("K80.2", "Calculus of gallbladder without cholecystitis", ("J18.3",), True),
    ("M16.9", "Coxarthrosis, unspecified", ("W37.1",), True),
    ("M17.1", "Other primary gonarthrosis", ("W40.1",), True),
    ("H25.9", "Senile cataract, unspecified", ("C75.1",), True),
    ("K57.3", "Diverticular disease of large intestine", ("H22.1",), True),
    ("C18.9", "Malignant neoplasm of colon, unspecified", ("H07.9", "H22.1"), True),
    ("C50.9", "Malignant neoplasm of breast, unspecified", ("B28.3",), True),
    ("K21.9", "Gastro-oesophageal reflux disease without oesophagitis", ("G45.1",), True),
)
ADMISSION_METHODS = {
    "elective": (("11", 0.45), ("12", 0.35), ("13", 0.20)),
    "emergency": (("21", 0.62), ("22", 0.15), ("23", 0.03), ("28", 0.15), ("81", 0.05)),
}
ADMISSION_METHOD_TERMS = {
    "11": "Elective Admission: Waiting list",
    "12": "Elective Admission: Booked",
    "13": "Elective Admission: Planned",
    "21": "Emergency Admission: Emergency Care Department",
    "22": "Emergency Admission: GP",
    "23": "Emergency Admission: Bed bureau",
    "28": "Emergency Admission: Other means",
    "81": "Transfer of an admitted patient from another hospital provider",
}


def all_snomed_codes() -> set[str]:
    """Every SNOMED CT and dm+d identifier this module can emit (checked in the tests)."""
    drugs = {d.code for c in CHRONIC for d in c.drugs}
    drugs |= {a.drug.code for a in ACUTE if a.drug}
    drugs.add(SODIUM_CHLORIDE.code)
    codes = {c.code for c in CHRONIC} | {a.code for a in ACUTE}
    codes |= {m.code for m in (BMI, WEIGHT, HEIGHT, SYSTOLIC, DIASTOLIC, HBA1C, CHOLESTEROL, EGFR)}
    codes |= {s[0] for s in SMOKING} | {FLU_VACCINE[0], MED_REVIEW[0], SMEAR[0]}
    codes |= {a[0] for a in ALLERGIES} | {i[0] for i in IMMUNISATIONS}
    return codes | drugs
