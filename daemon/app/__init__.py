"""The application: the pipeline of one inbound message, the conversation on a
ticket, agents' actions, ticket services, notices to agents, composing mail,
the SLA clock and its sweeps, reports, status and the views of a ticket.

Written against the Protocols of `daemon.ports`; never imports an adapter or a
driver. May import `daemon.core`, `daemon.mail`, `daemon.rules.ruleset`, `daemon.ports`
and `daemon.config`.
"""
