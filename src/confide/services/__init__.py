"""Parties as services over HTTP: signed requests between enrolled parties, replays refused.

A first step towards the multi-service deployment: ``signing`` gives each party an Ed25519
identity in its own state folder and signs and checks requests; ``ledger_service`` serves the
ledger's event intake; ``ledger_client`` is the same ``append_once`` the in-process ledger
offers, over HTTP, so the composition's receivers work unchanged on either transport.
"""
