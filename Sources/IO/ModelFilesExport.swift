// The model files' formats (config.json, safetensors, mapped files) are a
// module of their own, ModelFiles, so that the engine reads weights without
// IO's zstd and ISA-L; IO's users see them as part of IO.
@_exported import ModelFiles
