"""rules.yaml: read as YAML nodes, validated section by section with a position
for every complaint, compiled into immutable condition objects, and run to
decide what a new ticket gets (`ruleset`).

Pure: the caller reads the file and passes its text. May import `daemon.core`
and `daemon.mail`.
"""
