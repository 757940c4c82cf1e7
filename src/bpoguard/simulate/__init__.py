"""A synthetic but realistic BPO world, driven through the record gateway.

`run.simulate` is the entry point; `world` casts the people and places,
`engine` plays out ordinary days, `scenarios` injects the seed stories' crimes,
`identities` makes the customers' personal data.
"""
