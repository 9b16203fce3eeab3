"""The hub: the record store and trusted research environment.

It holds pseudonymised records and nothing that identifies anyone: no NHS number, name, date of
birth, postcode, and no pseudonymiser key. It reaches the pseudonymiser only through the
``PseudonymService`` port.
"""
