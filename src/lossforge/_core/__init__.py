"""lossforge's private core: reduction, base class, composition, checks, errors, registry, specs.

It imports nothing else of lossforge.
"""
