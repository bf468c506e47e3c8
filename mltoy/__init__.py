"""The iris classifier pipeline: validated params and data, and one function per stage.

The package knows nothing about the orchestrators that run it (DVC, Prefect): each stage
is a plain function of paths and params, and `mltoy.cli` is the one entry point they call.
"""
