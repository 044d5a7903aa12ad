"""Environments: env specs (envs/*.yaml, validated) and vector-env factories.

Imports: core only.
"""
