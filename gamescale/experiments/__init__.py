"""Named, runnable experiment specs (YAML), one file per experiment."""
