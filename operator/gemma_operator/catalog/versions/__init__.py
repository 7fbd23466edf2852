"""versions: per runtime and per release, the facts its allocator model depends on, each with its upstream source.

One module and one YAML file per runtime. A plan uses the rules of the version its image runs; an
image tag the catalog does not know gets the pinned version's rules, and the plan says so.
"""
