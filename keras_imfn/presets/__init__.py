"""The trained trees shipped with keras-imfn: package data, no code.

Each subdirectory holding a `metadata.json` is a preset named after it, as
`TreeMemory.save_to_preset` writes it (`config.json`, `model.weights.h5`,
`metadata.json`); `TreeMemory.presets` lists them and
`TreeMemory.from_preset(name)` loads one.
"""
