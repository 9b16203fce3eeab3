"""Linking records across sources to one person, inside the pseudonymiser only.

Two steps, both here and nowhere else (identifiers never leave the pseudonymiser):

1. **Deterministic**: a valid NHS number gives the same pseudonym in every source
   (``confide.pseudonymiser.index``).
2. **Probabilistic** (Fellegi-Sunter, with Splink): a record without a usable NHS number is
   compared with the people already in the person index on NHS number (one digit wrong or two
   swapped), date of birth (day and month swapped, one digit wrong), sex and postcode (unit,
   sector, district and the postcodes the person has lived at). Above the link threshold it
   takes the person's pseudonym and its match weight; in the band below, it waits for a
   reviewer in the clerical review queue; below that it stays pending with the reason.

The modules, each with one job:

- ``records``: the columns the model compares, prepared from identity rows or files.
- ``model``: the comparisons, blocking rules, thresholds and bands.
- ``training``: parameters estimated from the data itself, with no labels.
- ``scoring``: candidate pairs scored, and one decision per record.
- ``engines``: DuckDB here, Spark at scale: the same model on either.
- ``store``: the pseudonymiser's own linkage state (people's identifiers, pending records,
  the review queue, resolutions, quality per source).
- ``incremental``: a submission linked against the existing person index, and earlier pending
  records resolved by later ones.
- ``evaluate``: ``confide link``, the same model on two files of person records.
"""
