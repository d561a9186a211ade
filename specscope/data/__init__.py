"""Data files shipped with specscope: the demo trace and the published n-gram match probabilities."""
