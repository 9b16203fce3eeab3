"""The practice agent: runs at each GP practice or trust and turns its export into a submission.

It validates the export, drops type 1 objectors, minimises to coded data, seals identifiers to
the pseudonymiser's public key and signs the result. It never holds anyone else's keys.
"""
