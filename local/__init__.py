"""Local: runtime/ (what production runs), cloud_emulation/ (`run --cloud` only), commands/ (the CLI)."""
