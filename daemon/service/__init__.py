"""Wiring and the long-running loops: the one place that builds concrete
objects (`wiring`), the loops that commit (`worker` inbound, `sender` and
`delivery` outbound), and `spocd run` (`runner`, with `mailboxes`, `health`,
`instance` and `reload`). May import everything below it.
"""
