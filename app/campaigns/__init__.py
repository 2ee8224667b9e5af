"""National campaigns: a dated mobilisation with its page, its image, its domains and the missions tagged for it."""
