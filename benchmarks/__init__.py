"""Benchmarks: axon against hand-written JAX and the libraries users would pick instead.

Run ``python -m benchmarks.run --help``. Every implementation of every workload runs in
a fresh subprocess (:mod:`benchmarks.worker`); the coordinator (:mod:`benchmarks.run`)
interleaves their timing windows round by round so that load from other processes on a
shared machine falls on all of them alike, and reports medians and paired ratios against
hand-written JAX measured in the same run. Nothing here is imported by the library or run
by the test suite (except a 2-step smoke test).
"""
