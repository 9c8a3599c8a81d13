"""Applications: the pipeline supervisor, its configuration and its components."""
