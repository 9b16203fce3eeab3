"""Parties as services over HTTP: signed requests between enrolled parties, replays refused.

``signing`` gives each party an Ed25519 identity in its own state folder and signs and checks
requests; ``rpc`` serves a party's allowlisted methods and is the client that calls them, so
the composition works unchanged on either transport; ``supervisor`` runs them all
(``confide up``).
"""
