"""A witness: an independent party that keeps a transparency log honest (C2SP tlog-witness).

It remembers, for each log it watches, the latest checkpoint it cosigned, and cosigns a new one
only when given a consistency proof that the new tree extends that one. So a log cannot show two
different histories (a split view), roll back or fork without the witnesses refusing; auditors
who require a quorum of witnesses' cosignatures then refuse it too. It keeps its own state and
key in its own folder, and imports only the log's formats (checkpoints, cosignatures, proofs),
never the log's store.
"""
