"""Prefect 3 orchestration of the mltoy pipeline, in two styles over one `dvc.yaml`.

Option A (`option_a`): Prefect operates the DVC pipeline; DVC owns the DAG and caching.
Option B (`option_b`): Prefect owns the stage DAG, derived from `dvc.yaml`, and caches
each stage on the content of its deps, params and code.
"""
