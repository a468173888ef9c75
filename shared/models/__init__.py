"""What the service and its clients agree on: the job spec, records, studies, presets, device,
dataset and webhook descriptions.

Pydantic and the standard library only: the Python client imports this package and nothing
else of ``shared``, so it needs none of the server's dependencies.
"""
