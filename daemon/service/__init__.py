"""Wiring and the long-running loops: the one place that builds concrete
objects (`wiring`), the loops that commit (`worker` inbound, `sender` and
`delivery` outbound), and `spocd run` (`runner`, with `mailboxes`, `health`,
`instance`, `reload` and `parsers`, its parser process). May import
everything below it.
"""
