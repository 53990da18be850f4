"""Wiring and the long-running loops: the one place that builds concrete
objects (`wiring`), the worker loops that commit (`worker`), and `spocd run`
(`runner`). May import everything below it.
"""
