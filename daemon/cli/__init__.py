"""Entry points: argument parsing (`main`) and each command group; `bench/`
holds the benchmarks and the private Dovecot they use. May import everything.

Heavy imports happen inside the commands, so `spocd --help` and
`ingest --queue-only` start fast.
"""
