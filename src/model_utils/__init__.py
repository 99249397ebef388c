"""Model-zoo style utilities: configuration (config.py), device environment (device_adapter.py) and
ModelArts data synchronisation (moxing_adapter.py). Importing them has no side effects."""
